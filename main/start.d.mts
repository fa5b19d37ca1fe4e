// Types of start.mjs (a plain Node script so that it runs before anything is built), for the TypeScript tests.
export declare const MAIN_BUNDLE: string;
export declare const MISSING_ELECTRON: string;
export declare function findElectron(requireFn: (id: string) => unknown): string | null;
export interface StartDeps {
  electron: string | null;
  env: NodeJS.ProcessEnv;
  warn(line: string): void;
  runElectron(electron: string, args: string[], env: NodeJS.ProcessEnv): Promise<number>;
  runServe(argv: string[]): Promise<number>;
}
export declare function start(argv: string[], deps: StartDeps): Promise<number>;
