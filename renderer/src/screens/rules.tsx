import { lazy, Suspense, useCallback, useEffect, useRef, useState } from 'react';
import type { RuleProblem, RulesDocument } from '../../../src/contract/api.js';
import { useClient, useEvents } from '../state/console-context.js';
import { TryIt } from './try-it.js';

const RulesEditor = lazy(() => import('./rules-editor.js').then((m) => ({ default: m.RulesEditor })));
const RulesDiff = lazy(() => import('./rules-editor.js').then((m) => ({ default: m.RulesDiff })));

const CHECK_DELAY_MS = 400;

/** The loader's reasons often start with the key already. */
export function describe(p: RuleProblem): string {
  return !p.key || p.reason.startsWith(p.key) ? p.reason : `${p.key}: ${p.reason}`;
}

export function RulesScreen() {
  const client = useClient();
  const [doc, setDoc] = useState<RulesDocument | null>(null);
  const [text, setText] = useState('');
  const [problems, setProblems] = useState<RuleProblem[]>([]);
  const [reviewing, setReviewing] = useState(false);
  const [status, setStatus] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const dirty = doc !== null && text !== doc.text;
  const dirtyRef = useRef(dirty);
  dirtyRef.current = dirty;
  /** Our own save announces itself as policy_changed too; the reload after the save covers it. */
  const saving = useRef(false);

  const load = useCallback(() => {
    client.getRules({}).then((d) => { setDoc(d); setText(d.text); setProblems([]); saving.current = false; }, (e: Error) => setError(e.message));
  }, [client]);
  useEffect(load, [load]);

  // Someone else saved (another window, or the file was edited): follow it unless this window has unsaved edits.
  const onPolicy = useCallback(() => {
    if (saving.current) return;
    if (dirtyRef.current) setStatus('The running rules changed elsewhere; saving will ask you to reload first.');
    else load();
  }, [load]);
  useEvents(['policy_changed'], onPolicy);

  useEffect(() => {
    if (!doc || !dirty) { setProblems([]); return; }
    const t = setTimeout(() => {
      client.checkRules({ text }).then((r) => setProblems(r.problems), () => {});
    }, CHECK_DELAY_MS);
    return () => clearTimeout(t);
  }, [client, doc, dirty, text]);

  const save = async () => {
    if (!doc) return;
    setError(null);
    saving.current = true;
    try {
      const r = await client.putRules({ text, baseSha256: doc.sha256 });
      if (!r.applied) saving.current = false;
      if (r.applied) {
        setReviewing(false);
        setStatus(`Saved: policy version ${r.policyVersion} is in force for the next statement of every session.`);
        load();
      } else {
        setReviewing(false);
        setProblems(r.problems);
        setError(`Refused: ${r.problems.map((p) => `${p.line > 0 ? `line ${p.line}: ` : ''}${describe(p)}`).join('; ')}`);
      }
    } catch (e) {
      saving.current = false;
      setReviewing(false);
      setError((e as Error).message);
    }
  };

  if (!doc) return <section><h2>Rules</h2>{error ? <p className="error">{error}</p> : <p className="muted">loading…</p>}</section>;
  return (
    <section className="rules">
      <div className="toolbar">
        <h2>Rules</h2>
        <span className="muted">{doc.source ?? 'no config file'} · policy version {doc.policyVersion} · sections: {doc.sections.join(', ')}</span>
        <button disabled={!dirty || !doc.editable} onClick={() => setReviewing(true)} data-testid="review-save">Review changes…</button>
        <button disabled={!dirty} onClick={() => { setText(doc.text); setError(null); }}>Discard</button>
      </div>
      {!doc.editable && <p className="warning">Sluice runs without a config file (demo): the rules can be read and tried, not saved. Start it with --config FILE.</p>}
      {status && <p className="flash" data-testid="rules-status">{status}</p>}
      {error && <p className="error" data-testid="rules-error">{error}</p>}
      {problems.length > 0 && !error && (
        <ul className="problems" data-testid="rules-problems">
          {problems.map((p, i) => <li key={i}>{p.line > 0 ? `line ${p.line}:${p.column} ` : ''}{describe(p)}</li>)}
        </ul>
      )}
      <Suspense fallback={<p className="muted">loading the editor…</p>}>
        {/* Both stay mounted (hidden when not in use): Monaco editors are built once per visit of this screen. */}
        <div className="diff-review" hidden={!reviewing}>
          <p>Running version (left) against your edit (right). Saving applies it to the next statement of every session.</p>
          <RulesDiff original={doc.text} modified={text} />
          <button onClick={() => void save()} disabled={problems.length > 0} data-testid="apply">Save and apply</button>
          <button onClick={() => setReviewing(false)}>Back to editing</button>
        </div>
        <div hidden={reviewing}>
          <RulesEditor value={text} schema={doc.schema} problems={problems} readOnly={!doc.editable} onChange={setText} />
        </div>
      </Suspense>
      <TryIt policyVersion={doc.policyVersion} />
    </section>
  );
}
