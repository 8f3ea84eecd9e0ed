// Upload then download one object with the official JS client's helpers.
// Usage: node objects_roundtrip.js <rootUrl> <clientId> <accessToken> <name> <size>
// Prints {"ok": true, "contentType": ...} or exits non-zero with the error.
const crypto = require('crypto');
const { Readable, Writable } = require('stream');
const taskcluster = require('taskcluster-client').default; // the ES module's default export: every client class and helper

const main = async () => {
  const [rootUrl, clientId, accessToken, name, size] = process.argv.slice(2);
  const object = new taskcluster.Object({ rootUrl, credentials: { clientId, accessToken }, retries: 0 });
  const data = crypto.randomBytes(Number(size));
  await taskcluster.upload({
    projectId: 'e2e-js', name, contentType: 'application/x-js-e2e', contentLength: data.length,
    expires: taskcluster.fromNow('1 day'), object,
    streamFactory: async () => Readable.from([data]),
  });
  const chunks = [];
  const contentType = await taskcluster.download({
    name, object,
    streamFactory: async () => {
      chunks.length = 0;
      return new Writable({ write(chunk, _enc, done) { chunks.push(chunk); done(); } });
    },
  });
  const got = Buffer.concat(chunks);
  if (!got.equals(data)) {
    throw new Error(`downloaded ${got.length} bytes differ from the ${data.length} uploaded`);
  }
  console.log(JSON.stringify({ ok: true, contentType }));
};

main().catch(err => { console.error(err.stack || String(err)); process.exit(1); });
