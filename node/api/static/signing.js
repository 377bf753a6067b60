// The household's key in the page (docs/privacy.md "Who sees what through the API"):
// read from its key file, kept in this tab only (memory and sessionStorage, gone when the
// tab closes), never sent anywhere. Each request for private data is signed with it by
// WebCrypto's Ed25519, by the rule of node/consent/signed.py: the signature covers
// "voisinage/1/http:" + METHOD \n PATH \n QUERY \n TIME \n NONCE.
"use strict";

const KEY_STORE = "voisinage.key";
const HEX = /^[0-9a-f]*$/;
// PKCS #8 of an Ed25519 private key (RFC 8410): this prefix, then the 32-byte seed.
const PKCS8_PREFIX = "302e020100300506032b657004220420";
const enc = new TextEncoder();

function hexToBytes(hex) {
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return out;
}

function bytesToHex(bytes) {
  return Array.from(new Uint8Array(bytes), b => b.toString(16).padStart(2, "0")).join("");
}

class KeyFileError extends Error {}

async function importKeyFile(doc) {
  // node/home/keyfile.py: {"type": "ed25519", "public": 64 hex, "seed": 64 hex}.
  const ok = h => typeof h === "string" && h.length === 64 && HEX.test(h);
  if (!doc || typeof doc !== "object" || doc.type !== "ed25519" || !ok(doc.public) || !ok(doc.seed)) {
    throw new KeyFileError("not_key_file");
  }
  if (!(window.crypto && crypto.subtle)) throw new KeyFileError("no_webcrypto");
  const key = await crypto.subtle.importKey("pkcs8", hexToBytes(PKCS8_PREFIX + doc.seed), {name: "Ed25519"},
    false, ["sign"]);
  // The public key must be the seed's: sign once and check with it.
  const probe = enc.encode("voisinage/1/http:key-check");
  const pub = await crypto.subtle.importKey("raw", hexToBytes(doc.public), {name: "Ed25519"}, false, ["verify"]);
  const sig = await crypto.subtle.sign({name: "Ed25519"}, key, probe);
  if (!await crypto.subtle.verify({name: "Ed25519"}, pub, sig, probe)) throw new KeyFileError("key_mismatch");
  return key;
}

const Signer = {
  pub: null,
  key: null,

  // A key file's text; throws KeyFileError (its message: an I18N key) if it is not one.
  async load(text) {
    let doc;
    try { doc = JSON.parse(text); } catch (e) { throw new KeyFileError("not_key_file"); }
    this.key = await importKeyFile(doc);
    this.pub = doc.public;
    try { sessionStorage.setItem(KEY_STORE, JSON.stringify({type: doc.type, public: doc.public, seed: doc.seed})); }
    catch (e) { /* storage refused: the key stays in memory for this page only */ }
  },

  async restore() {
    let text = null;
    try { text = sessionStorage.getItem(KEY_STORE); } catch (e) { return; }
    if (!text) return;
    try { await this.load(text); } catch (e) { this.forget(); }
  },

  forget() {
    this.pub = null;
    this.key = null;
    try { sessionStorage.removeItem(KEY_STORE); } catch (e) { /* nothing kept */ }
  },

  // The four headers of a signed request for `method url` (url: a path with its query).
  async headers(method, url) {
    const target = new URL(url, location.origin);
    const query = target.search.startsWith("?") ? target.search.slice(1) : "";
    const t = Math.floor(Date.now() / 1000);
    const nonce = bytesToHex(crypto.getRandomValues(new Uint8Array(16)));
    const text = `voisinage/1/http:${method.toUpperCase()}\n${target.pathname}\n${query}\n${t}\n${nonce}`;
    const sig = await crypto.subtle.sign({name: "Ed25519"}, this.key, enc.encode(text));
    return {"x-voisinage-key": this.pub, "x-voisinage-time": String(t), "x-voisinage-nonce": nonce,
      "x-voisinage-signature": bytesToHex(sig)};
  },
};
window.Signer = Signer;
window.KeyFileError = KeyFileError;
