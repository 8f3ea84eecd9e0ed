// A worker's object artifact with the official JS client: createArtifact with
// the run's credentials, the upload helper with the credentials it returns,
// finishArtifact. The bytes are `size` bytes of a repeated pattern.
// Usage: node upload_artifact.js <rootUrl> <credentials JSON> <taskId> <runId> <name> <size>
const { Readable } = require('stream');
const taskcluster = require('taskcluster-client').default;

const main = async () => {
  const [rootUrl, credentials, taskId, runId, name, size] = process.argv.slice(2);
  const queue = new taskcluster.Queue({ rootUrl, credentials: JSON.parse(credentials), retries: 0 });
  const contentType = 'application/x-js-artifact';
  const created = await queue.createArtifact(taskId, runId, name, {
    storageType: 'object', contentType, expires: taskcluster.fromNow('1 day'),
  });
  const data = Buffer.alloc(Number(size), 'js-bytes');
  const object = new taskcluster.Object({ rootUrl, credentials: created.credentials, retries: 0 });
  await taskcluster.upload({
    projectId: created.projectId, name: created.name, contentType, contentLength: data.length,
    expires: new Date(created.expires), uploadId: created.uploadId, object, retries: 0,
    streamFactory: async () => Readable.from([data]),
  });
  await queue.finishArtifact(taskId, runId, name, { uploadId: created.uploadId });
  console.log(JSON.stringify({ ok: true, name: created.name }));
};

main().catch(err => { console.error(err.stack || String(err)); process.exit(1); });
