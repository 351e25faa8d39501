// What Cloudflare's Logpush instructions and AI Gateway do, in Node: a key pair made with
// Node's crypto (PKCS#8 / SPKI PEM), and a field encrypted the way a Worker's WebCrypto does
// (RSA-OAEP SHA-256 wrapping a raw AES-256-GCM key; the 16-byte tag at the end of the data).
// Mode `seal`: prints {private_pem, public_pem, field} for the plaintext in argv[3].
// Mode `open`: reads {private_pem, field} as JSON on stdin and prints the plaintext.
import { generateKeyPairSync, webcrypto } from "node:crypto";
import { readFileSync } from "node:fs";

const subtle = webcrypto.subtle;
const b64 = (buf) => Buffer.from(buf).toString("base64");
const pemBody = (pem) => Buffer.from(pem.replace(/-----[^-]+-----/g, "").replace(/\s+/g, ""), "base64");

const mode = process.argv[2];
if (mode === "seal") {
  const { publicKey, privateKey } = generateKeyPairSync("rsa", {
    modulusLength: 4096,
    publicKeyEncoding: { type: "spki", format: "pem" },
    privateKeyEncoding: { type: "pkcs8", format: "pem" },
  });
  const rsa = await subtle.importKey("spki", pemBody(publicKey), { name: "RSA-OAEP", hash: "SHA-256" }, false, ["encrypt"]);
  const aes = await subtle.generateKey({ name: "AES-GCM", length: 256 }, true, ["encrypt"]);
  const raw = await subtle.exportKey("raw", aes);
  const iv = webcrypto.getRandomValues(new Uint8Array(12));
  const data = await subtle.encrypt({ name: "AES-GCM", iv }, aes, new TextEncoder().encode(process.argv[3]));
  const key = await subtle.encrypt({ name: "RSA-OAEP" }, rsa, raw);
  console.log(JSON.stringify({
    private_pem: privateKey,
    public_pem: publicKey,
    field: { type: "encrypted", key: b64(key), iv: b64(iv), data: b64(data) },
  }));
} else if (mode === "open") {
  const { private_pem, field } = JSON.parse(readFileSync(0, "utf8"));
  const rsa = await subtle.importKey("pkcs8", pemBody(private_pem), { name: "RSA-OAEP", hash: "SHA-256" }, false, ["decrypt"]);
  const raw = await subtle.decrypt({ name: "RSA-OAEP" }, rsa, Buffer.from(field.key, "base64"));
  const aes = await subtle.importKey("raw", raw, { name: "AES-GCM" }, false, ["decrypt"]);
  const plain = await subtle.decrypt({ name: "AES-GCM", iv: Buffer.from(field.iv, "base64"), tagLength: 128 }, aes, Buffer.from(field.data, "base64"));
  process.stdout.write(new TextDecoder().decode(plain));
} else {
  console.error("usage: node cloudflare_keys.mjs seal <plaintext> | open < {private_pem, field}");
  process.exit(2);
}
