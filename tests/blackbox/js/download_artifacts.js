// Download artifacts with the official JS client's downloadArtifact helper.
// Usage: node download_artifacts.js <rootUrl> <clientId> <accessToken> <taskId> <runId|latest> <name>...
// Prints one JSON line per name: {name, sha256, length, contentType} or {name, error, reason}.
const crypto = require('crypto');
const { Writable } = require('stream');
const taskcluster = require('taskcluster-client').default;

const one = async (queue, taskId, runId, name) => {
  const chunks = [];
  const streamFactory = async () => {
    chunks.length = 0;
    return new Writable({ write(chunk, _enc, done) { chunks.push(chunk); done(); } });
  };
  try {
    const contentType = await taskcluster.downloadArtifact({
      taskId, name, queue, streamFactory, retries: 0, ...(runId === 'latest' ? {} : { runId: Number(runId) }),
    });
    const data = Buffer.concat(chunks);
    return { name, contentType, length: data.length, sha256: crypto.createHash('sha256').update(data).digest('hex') };
  } catch (err) {
    return { name, error: err.message, reason: err.reason, status: err.statusCode };
  }
};

const main = async () => {
  const [rootUrl, clientId, accessToken, taskId, runId, ...names] = process.argv.slice(2);
  const queue = new taskcluster.Queue({ rootUrl, credentials: { clientId, accessToken }, retries: 0 });
  for (const name of names) {
    console.log(JSON.stringify(await one(queue, taskId, runId, name)));
  }
};

main().catch(err => { console.error(err.stack || String(err)); process.exit(1); });
