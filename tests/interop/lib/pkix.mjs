// Independent PKIX checks: chain validation with @peculiar/x509 (WebCrypto) and the
// OCPP CertificateHashDataType computed from the DER with a small DER reader of our
// own, so that nothing here reuses gridtrust's code or OpenSSL's.
import 'reflect-metadata';
import { webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';
import { sha256 } from './gridtrust.mjs';

x509.cryptoProvider.set(webcrypto);

export { x509 };

// ---- a minimal DER reader ----

// The TLV at `offset`: { tag, header (bytes of tag+length), start (of contents), end }.
export function derTlv(buf, offset = 0) {
  const tag = buf[offset];
  let len = buf[offset + 1];
  let p = offset + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n === 0 || n > 4) throw new Error('unsupported DER length');
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + buf[p + i];
    p += n;
  }
  if (p + len > buf.length) throw new Error('DER element runs past the end');
  return { tag, start: p, end: p + len, offset };
}

// The children of a constructed element.
export function derChildren(buf, tlv) {
  const out = [];
  for (let p = tlv.start; p < tlv.end; ) {
    const c = derTlv(buf, p);
    out.push(c);
    p = c.end;
  }
  return out;
}

// Certificate ::= SEQUENCE { tbsCertificate, signatureAlgorithm, signatureValue }
// TBSCertificate ::= SEQUENCE { [0] version OPTIONAL, serialNumber, signature, issuer,
//   validity, subject, subjectPublicKeyInfo, ... }
export function certParts(derInput) {
  const der = Buffer.from(derInput);
  const cert = derTlv(der, 0);
  const tbs = derChildren(der, cert)[0];
  const f = derChildren(der, tbs);
  const i = f[0].tag === 0xa0 ? 1 : 0;
  const serial = f[i];
  const issuer = f[i + 2];
  const subject = f[i + 4];
  const spki = f[i + 5];
  if (serial.tag !== 0x02 || issuer.tag !== 0x30 || subject.tag !== 0x30 || spki.tag !== 0x30)
    throw new Error('not an X.509 certificate');
  const [, bitString] = derChildren(der, spki);
  if (bitString.tag !== 0x03) throw new Error('subjectPublicKey is not a BIT STRING');
  return {
    serial: der.subarray(serial.start, serial.end),
    issuerDer: der.subarray(issuer.offset, issuer.end),
    subjectDer: der.subarray(subject.offset, subject.end),
    // The BIT STRING's contents without the unused-bits octet (RFC 6960 CertID).
    publicKeyBits: der.subarray(bitString.start + 1, bitString.end),
  };
}

// OCPP 2.0.1/2.1 CertificateHashDataType of `certDer`, issued by `issuerDer`.
export function certificateHashData(certDer, issuerDer) {
  const c = certParts(certDer);
  const issuer = certParts(issuerDer);
  if (!c.issuerDer.equals(issuer.subjectDer)) throw new Error('issuer certificate does not match the issuer name');
  const serialHex = c.serial.toString('hex').replace(/^0+/, '') || '0';
  return {
    hashAlgorithm: 'SHA256',
    issuerNameHash: sha256(c.issuerDer).toString('hex'),
    issuerKeyHash: sha256(issuer.publicKeyBits).toString('hex'),
    serialNumber: serialHex,
  };
}

export function sameHashData(a, b) {
  return (
    a.hashAlgorithm === b.hashAlgorithm &&
    a.issuerNameHash.toLowerCase() === b.issuerNameHash.toLowerCase() &&
    a.issuerKeyHash.toLowerCase() === b.issuerKeyHash.toLowerCase() &&
    a.serialNumber.toLowerCase().replace(/^0+/, '') === b.serialNumber.toLowerCase().replace(/^0+/, '')
  );
}

// ---- chain validation ----

// Validates `leaf` (PEM or DER) up to `rootPem` with the intermediates given: every
// signature, every validity period at `date`, CA basicConstraints on the issuers,
// and the chain ends in exactly the trusted root. Returns the chain, leaf first.
export async function validateChain(leaf, intermediates, rootPem, date = new Date()) {
  const leafCert = new x509.X509Certificate(leaf);
  const root = new x509.X509Certificate(rootPem);
  const pool = intermediates.map((c) => new x509.X509Certificate(c));
  const builder = new x509.X509ChainBuilder({ certificates: [...pool, root] });
  const chain = await builder.build(leafCert);
  if (chain.length < 2) throw new Error(`no chain from ${leafCert.subject} to a known issuer`);
  const top = chain[chain.length - 1];
  if (!Buffer.from(top.rawData).equals(Buffer.from(root.rawData)))
    throw new Error(`chain ends in ${top.subject}, not the trusted root ${root.subject}`);
  for (let i = 0; i < chain.length; i++) {
    const cert = chain[i];
    const issuer = chain[Math.min(i + 1, chain.length - 1)];
    if (cert.issuer !== issuer.subject) throw new Error(`${cert.subject}: issuer name is not ${issuer.subject}`);
    const ok = await cert.verify({ publicKey: issuer.publicKey, date });
    if (!ok) throw new Error(`${cert.subject}: bad signature or outside its validity`);
    if (i > 0) {
      const bc = cert.getExtension(x509.BasicConstraintsExtension);
      if (!bc || !bc.ca) throw new Error(`${cert.subject} issues certificates but is not a CA`);
      const ku = cert.getExtension(x509.KeyUsagesExtension);
      if (ku && !(ku.usages & x509.KeyUsageFlags.keyCertSign)) throw new Error(`${cert.subject} lacks keyCertSign`);
      if (bc.pathLength !== undefined && i - 1 > bc.pathLength)
        throw new Error(`${cert.subject}: pathLenConstraint ${bc.pathLength} exceeded`);
    }
  }
  return chain;
}
