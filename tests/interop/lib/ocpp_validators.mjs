// Strict-mode validators for ocpp-rpc. ocpp-rpc 2.2.1 bundles the official OCPP 2.1
// schemas with the 2.1 `$id`s (urn:<Action>Request / urn:<Action>Response) but looks
// schemas up by the 1.6/2.0.1 convention (urn:<Action>.req / .conf), so strict mode
// rejects every 2.1 call ("Schema 'urn:X.req' is missing from subprotocol schema
// 'ocpp2.1'"; mikuso/ocpp-rpc PR #94). Until a fixed release, the same bundled
// schemas are registered again under the ids the lookup uses. With a fixed ocpp-rpc
// (the bundled validator finds urn:SignCertificate.req) nothing is overridden.
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const { createValidator } = require('ocpp-rpc');
const standard = require('ocpp-rpc/lib/standard-validators');

function lookupWorks(subprotocol) {
  const v = standard.find((x) => x.subprotocol === subprotocol);
  try {
    v.validate('urn:SignCertificate.req', { csr: 'x' });
    return true;
  } catch {
    return false;
  }
}

export const ocpp21LookupBroken = !lookupWorks('ocpp2.1');

let cached = null;
export function strictModeValidators() {
  if (!ocpp21LookupBroken) return [];
  if (cached) return cached;
  const schemas = structuredClone(require('ocpp-rpc/lib/schemas/ocpp2_1.json')).map((s) => ({
    ...s,
    $id: s.$id.replace(/^urn:(\w+)Request$/, 'urn:$1.req').replace(/^urn:(\w+)Response$/, 'urn:$1.conf'),
  }));
  const validator = createValidator('ocpp2.1', schemas);
  // Compile now, quietly: Ajv's strictTypes notes about the official schemas (an
  // "additionalProperties" on string enums) are not findings of these tests.
  const warn = console.warn;
  console.warn = () => {};
  try {
    for (const action of ['SignCertificate', 'CertificateSigned', 'GetCertificateStatus'])
      for (const kind of ['req', 'conf']) validator._ajv.getSchema(`urn:${action}.${kind}`);
  } finally {
    console.warn = warn;
  }
  cached = [validator];
  return cached;
}
