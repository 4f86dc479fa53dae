// The command line: the top layer; nothing in src/ imports it. `bin/ferry` runs main.ts.
export { commandHelp, main } from './main.ts';
