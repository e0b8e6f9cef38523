// cql-execution 3.3.2 makes a new Library object for every include (Repository.resolve) and a new evaluation
// context for every include path (PatientContext.getLibraryContext caches by the local alias, per including
// context). A library that N paths include is then evaluated N times per patient: MassiveHemoptysisInputs
// reached through Engine -> Severity -> RespiratorySupport -> Calculators is evaluated again, every define
// re-read from the FHIR data. The results are the same (a define is a function of the patient and the
// parameters, which every context shares); only the cost differs. This host keeps ONE Library per
// (id, version) and ONE context per Library per patient, so each define is evaluated once per patient.
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
const cql = require("cql-execution");
const { PatientContext } = require("cql-execution/lib/runtime/context");

export class SharedRepository extends cql.Repository {
  constructor(data) {
    super(data);
    this.resolved = new Map();
  }

  resolve(path, version) {
    const key = `${path}|${version ?? ""}`;
    if (!this.resolved.has(key)) this.resolved.set(key, super.resolve(path, version));
    return this.resolved.get(key);
  }
}

// One context per included Library, kept on the patient's root context (a new one per patient and run).
PatientContext.prototype.getLibraryContext = function getLibraryContext(alias) {
  const root = this.sharedRoot ?? this;
  root.sharedLibraryContexts ??= new Map();
  const library = this.get(alias);
  let context = root.sharedLibraryContexts.get(library);
  if (context === undefined) {
    context = new PatientContext(library, this.patient, this.codeService, this.parameters, this.executionDateTime,
      this.messageListener);
    context.sharedRoot = root;
    root.sharedLibraryContexts.set(library, context);
  }
  return context;
};
