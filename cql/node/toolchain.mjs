// The reference CQL translator (@cqframework/cql 5.3.0, Node API), set up once for all libraries:
// one ModelManager (System model info of the project + FHIR 4.0.1 model info shipped in cql-exec-fhir),
// one LibraryManager (so an included library is translated once), a UCUM service from @lhncbc/ucum-lhc.
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";

const require = createRequire(import.meta.url);
// kotlinx-io (inside the Kotlin/JS build of the translator) looks for a global `require` to reach node:fs.
globalThis.require = require;

const here = path.dirname(fileURLToPath(import.meta.url));
export const CQL_ROOT = path.resolve(here, "..");
export const REPO_ROOT = path.resolve(CQL_ROOT, "..");

const ucum = require("@lhncbc/ucum-lhc").UcumLhcUtils.getInstance();

export async function libraryManager(cqlFolders) {
  const { NamespaceManager } = await import("@cqframework/cql/cql");
  const t = await import("@cqframework/cql/cql-to-elm");
  const modelManager = new t.ModelManager(new NamespaceManager());
  modelManager.modelInfoLoader.registerModelInfoProvider(
    new t.DefaultModelInfoProvider(t.stringAsPath(path.join(CQL_ROOT, "modelinfo"))), true);
  modelManager.modelInfoLoader.registerModelInfoProvider(
    new t.DefaultModelInfoProvider(t.stringAsPath(path.join(REPO_ROOT, "node_modules/cql-exec-fhir/lib/modelInfos"))), false);
  const O = t.CqlCompilerOptions.Options;
  const options = new t.CqlCompilerOptions().withOptions([
    // no EnableAnnotations: the annotations (the CQL text again, per node) triple the ELM and no engine needs them
    O.EnableLocators, O.EnableResultTypes, O.DisableListDemotion, O.DisableListPromotion,
  ]);
  const ucumService = t.createUcumService(
    (value, from, to) => {
      const converted = ucum.convertUnitTo(from, Number(value), to);
      if (converted.status !== "succeeded") throw new Error(`UCUM cannot convert ${from} to ${to}`);
      return String(converted.toVal);
    },
    (unit) => {
      const checked = ucum.validateUnitString(unit, true);
      return checked.status === "valid" ? null : `'${unit}' is not a valid UCUM unit (${(checked.msg || []).join("; ")})`;
    },
    () => { throw new Error("UCUM multiply is not used at translation time"); },
    () => { throw new Error("UCUM divide is not used at translation time"); },
  );
  const manager = new t.LibraryManager(modelManager, options, null, ucumService);
  for (const folder of cqlFolders) {
    manager.librarySourceLoader.registerProvider(new t.DefaultLibrarySourceProvider(t.stringAsPath(folder)));
  }
  return { manager, CqlTranslator: t.CqlTranslator };
}

function message(exception) {
  // TrackBack exposes no readable properties in the Kotlin/JS build, only toString()
  const where = exception.locator ? String(exception.locator).match(/startLine=(\d+), startChar=(\d+)/) : null;
  const at = where ? `${where[1]}:${where[2]}` : "?";
  return { severity: exception.severity.name, at, text: exception.message };
}

// Translate each named library text; returns {name: {elm, errors, warnings}}.
export async function translateAll(sources, cqlFolders) {
  const { manager, CqlTranslator } = await libraryManager(cqlFolders);
  const out = {};
  for (const [name, text] of Object.entries(sources)) {
    const translator = CqlTranslator.fromText(text, manager);
    out[name] = {
      errors: translator.errors.asJsReadonlyArrayView().map(message),
      warnings: translator.warnings.asJsReadonlyArrayView().map(message),
      elm: translator.errors.asJsReadonlyArrayView().length ? null : JSON.parse(translator.toJson()),
    };
  }
  return out;
}
