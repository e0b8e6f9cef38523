// Runs the translated libraries (cql/build/elm) on cql-execution for many patients in ONE process.
// stdin: {"library": "MassiveHemoptysisEngine", "cases": [{"id", "now", "bundle"}]}
// stdout: {"milliseconds", "results": {id: {define: value}}}; DateTimes as ISO text, Tuples as objects.
import fs from "node:fs";
import path from "node:path";
import { createRequire } from "node:module";
import { CQL_ROOT } from "./toolchain.mjs";
import { SharedRepository } from "./shared_libraries.mjs";

const require = createRequire(import.meta.url);
const cql = require("cql-execution");
const cqlfhir = require("cql-exec-fhir");

export function loadLibrary(name, elmDir = path.join(CQL_ROOT, "build", "elm")) {
  const elm = Object.fromEntries(fs.readdirSync(elmDir).filter((f) => f.endsWith(".json"))
    .map((f) => [path.basename(f, ".json"), JSON.parse(fs.readFileSync(path.join(elmDir, f), "utf8"))]));
  const repository = new SharedRepository(elm); // one Library, one context per patient, per library
  return new cql.Library(elm[name], repository);
}

export function codeService() {
  return new cql.CodeService(JSON.parse(fs.readFileSync(path.join(CQL_ROOT, "valuesets.json"), "utf8")));
}

function plain(value) {
  if (value === null || value === undefined) return null;
  if (Array.isArray(value)) return value.map(plain);
  if (value instanceof cql.DateTime || value instanceof cql.Date) return value.toString();
  if (value && value.isQuantity) return { value: value.value, unit: value.unit };
  if (value && value.isCode) return { code: value.code, system: value.system };
  if (typeof value === "object") {
    if (value._json !== undefined) return `${value._typeName ?? "FHIR"}`; // a FHIR object is not a result
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, plain(v)]));
  }
  return value;
}

// Building a PatientSource parses the FHIR model info (XML): the cost that dominated a call. One source is
// made once and reset per patient (its public reset() / loadBundles()).
let sharedSource = null;

export const NO_PATIENT = "no Patient resource in the bundle: the libraries run in Patient context";

export async function evaluate(library, codes, bundle, now) {
  if (!(bundle.entry || []).some((e) => e.resource && e.resource.resourceType === "Patient")) {
    return { skipped: NO_PATIENT };
  }
  const instant = cql.DateTime.parse(now);
  const executor = new cql.Executor(library, codes, { Now: instant });
  sharedSource ??= cqlfhir.PatientSource.FHIRv401();
  const source = sharedSource;
  source.reset();
  source.loadBundles([bundle]);
  const results = await executor.exec(source, instant);
  const [patientResults] = Object.values(results.patientResults);
  if (!patientResults) return null;
  return Object.fromEntries(Object.entries(patientResults).filter(([k]) => k !== "Patient").map(([k, v]) => [k, plain(v)]));
}

if (process.argv[1] && path.resolve(process.argv[1]) === path.resolve(new URL(import.meta.url).pathname)) {
  const request = JSON.parse(fs.readFileSync(0, "utf8"));
  const started = Date.now();
  const library = loadLibrary(request.library);
  const codes = codeService();
  const results = {};
  for (const item of request.cases) {
    try {
      results[item.id] = await evaluate(library, codes, item.bundle, item.now);
    } catch (error) {
      results[item.id] = { error: String(error && error.message || error) };
    }
  }
  process.stdout.write(JSON.stringify({ milliseconds: Date.now() - started, results }));
}
