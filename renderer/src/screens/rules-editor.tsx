/**
 * The Monaco part of the Rules screen, loaded on demand (Monaco is most of the console's bytes). Edits are checked
 * by the core as you type (checkRules: the loader that would refuse the save) and shown as markers; saving goes
 * through a diff against the running rules.
 */
import { useEffect, useRef } from 'react';
import type { RuleProblem } from '../../../src/contract/api.js';
import { monaco } from '../monaco/setup.js';
import { suggestAt, type JsonSchema } from '../monaco/schema-completion.js';

let schemaForCompletion: JsonSchema = {};
let completionRegistered = false;

function registerCompletion() {
  if (completionRegistered) return;
  completionRegistered = true;
  monaco.languages.registerCompletionItemProvider('yaml', {
    triggerCharacters: [' ', ':', '[', ','],
    provideCompletionItems(model: monaco.editor.ITextModel, position: monaco.Position) {
      const lines = model.getLinesContent();
      const word = model.getWordUntilPosition(position);
      const range = new monaco.Range(position.lineNumber, word.startColumn, position.lineNumber, word.endColumn);
      const items = suggestAt(schemaForCompletion, lines, position.lineNumber - 1, position.column - 1);
      return {
        suggestions: items.map((s) => ({
          label: s.label, insertText: s.insertText, documentation: s.documentation, range,
          kind: s.kind === 'property' ? monaco.languages.CompletionItemKind.Property : monaco.languages.CompletionItemKind.EnumMember,
        })),
      };
    },
  });
}

export function RulesEditor({ value, schema, problems, readOnly, onChange }: {
  value: string; schema: Record<string, unknown>; problems: RuleProblem[]; readOnly: boolean; onChange: (text: string) => void;
}) {
  const host = useRef<HTMLDivElement>(null);
  const editor = useRef<monaco.editor.IStandaloneCodeEditor | null>(null);
  const changeRef = useRef(onChange);
  changeRef.current = onChange;
  schemaForCompletion = schema as JsonSchema;

  useEffect(() => {
    registerCompletion();
    const e = monaco.editor.create(host.current!, {
      value, language: 'yaml', theme: 'vs-dark', automaticLayout: true, minimap: { enabled: false }, readOnly,
      tabSize: 2, insertSpaces: true, fontSize: 13, scrollBeyondLastLine: false, renderWhitespace: 'boundary',
      // Invisible and look-alike characters in rules are as dangerous as in statements.
      unicodeHighlight: { invisibleCharacters: true, ambiguousCharacters: true },
    });
    editor.current = e;
    const sub = e.onDidChangeModelContent(() => changeRef.current(e.getValue()));
    return () => { sub.dispose(); e.dispose(); editor.current = null; };
    // Created once; later values arrive through the effects below.
  }, []);

  // A new running version replaces the text only when it differs (keeps the cursor while typing).
  useEffect(() => {
    const e = editor.current;
    if (e && e.getValue() !== value) e.setValue(value);
  }, [value]);

  useEffect(() => {
    const model = editor.current?.getModel();
    if (!model) return;
    monaco.editor.setModelMarkers(model, 'sluice', problems.filter((p) => p.line > 0).map((p) => ({
      severity: monaco.MarkerSeverity.Error, message: !p.key || p.reason.startsWith(p.key) ? p.reason : `${p.key}: ${p.reason}`,
      startLineNumber: p.line, startColumn: Math.max(1, p.column), endLineNumber: p.line, endColumn: model.getLineMaxColumn(p.line),
    })));
  }, [problems]);

  return <div ref={host} className="monaco-host" data-testid="rules-editor" />;
}

/** Created once and fed new texts: creating and disposing Monaco editors on every review is what breaks them. */
export function RulesDiff({ original, modified }: { original: string; modified: string }) {
  const host = useRef<HTMLDivElement>(null);
  const models = useRef<{ o: monaco.editor.ITextModel; m: monaco.editor.ITextModel } | null>(null);
  useEffect(() => {
    const d = monaco.editor.createDiffEditor(host.current!, {
      readOnly: true, automaticLayout: true, renderSideBySide: true, theme: 'vs-dark', minimap: { enabled: false }, originalEditable: false,
    });
    const o = monaco.editor.createModel('', 'yaml');
    const m = monaco.editor.createModel('', 'yaml');
    d.setModel({ original: o, modified: m });
    models.current = { o, m };
    return () => { models.current = null; d.setModel(null); d.dispose(); o.dispose(); m.dispose(); };
  }, []);
  useEffect(() => {
    if (!models.current) return;
    if (models.current.o.getValue() !== original) models.current.o.setValue(original);
    if (models.current.m.getValue() !== modified) models.current.m.setValue(modified);
  }, [original, modified]);
  return <div ref={host} className="monaco-diff" data-testid="rules-diff" />;
}
