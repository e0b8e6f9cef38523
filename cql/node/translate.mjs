// Translates every cql_equivalents/*.cql with one shared LibraryManager; writes the ELM (JSON) the engine runs
// to cql/build/elm/ and every error / warning to cql/build/translation.json. Exit 1 on any error.
import fs from "node:fs";
import path from "node:path";
import { CQL_ROOT, REPO_ROOT, translateAll } from "./toolchain.mjs";

const sourceDir = path.join(REPO_ROOT, "cql_equivalents");
const outDir = path.join(CQL_ROOT, "build", "elm");
const started = Date.now();
const sources = Object.fromEntries(fs.readdirSync(sourceDir).filter((f) => f.endsWith(".cql")).sort()
  .map((f) => [path.basename(f, ".cql"), fs.readFileSync(path.join(sourceDir, f), "utf8")]));
const results = await translateAll(sources, [sourceDir]);
fs.rmSync(outDir, { recursive: true, force: true });
fs.mkdirSync(outDir, { recursive: true });
const report = { milliseconds: 0, libraries: {} };
let errors = 0;
for (const [name, result] of Object.entries(results)) {
  report.libraries[name] = { errors: result.errors, warnings: result.warnings };
  errors += result.errors.length;
  if (result.elm) fs.writeFileSync(path.join(outDir, `${name}.json`), JSON.stringify(result.elm));
}
report.milliseconds = Date.now() - started;
fs.writeFileSync(path.join(CQL_ROOT, "build", "translation.json"), JSON.stringify(report, null, 1));
for (const [name, r] of Object.entries(report.libraries)) {
  for (const e of r.errors) console.error(`${name}:${e.at} ${e.severity}: ${e.text}`);
  for (const w of r.warnings) console.error(`${name}:${w.at} ${w.severity}: ${w.text}`);
}
console.log(`translated ${Object.keys(sources).length} libraries in ${report.milliseconds} ms, ${errors} errors`);
process.exit(errors ? 1 : 0);
