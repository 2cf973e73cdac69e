// Starts @20minutes/s3rver (a real S3 implementation that checks SigV4
// signatures) on 127.0.0.1 for virga's s3:// tests.
//
// Usage: node --openssl-legacy-provider s3rver.mjs --dir DIR [--port P] [--bucket NAME]...
//        [--tls-key KEY.pem --tls-cert CERT.pem]   (https instead of http)
//   (s3rver encrypts ListObjectsV2 continuation tokens with DES, which OpenSSL 3
//   serves only from its legacy provider: without the flag a paged listing is a 500.)
//   --port 0 (the default) takes a free port. Once listening, prints one line
//   "PORT <n>" on stdout; logs go to stderr only with --verbose.
// The credentials are s3rver's: access key S3RVER, secret S3RVER. Runs until
// SIGTERM/SIGINT.
import S3rver from '@20minutes/s3rver';
import { readFileSync } from 'node:fs';

const args = process.argv.slice(2);
let dir = null, port = 0, verbose = false, tlsKey = null, tlsCert = null;
const buckets = [];
for (let i = 0; i < args.length; ++i) {
  const a = args[i];
  if (a === '--dir') dir = args[++i];
  else if (a === '--port') port = Number(args[++i]);
  else if (a === '--bucket') buckets.push({ name: args[++i], configs: [] });
  else if (a === '--verbose') verbose = true;
  else if (a === '--tls-key') tlsKey = args[++i];
  else if (a === '--tls-cert') tlsCert = args[++i];
  else { console.error(`s3rver.mjs: unknown argument ${a}`); process.exit(2); }
}
if (!dir) { console.error('s3rver.mjs: --dir is required'); process.exit(2); }

const server = new S3rver({
  address: '127.0.0.1', port, directory: dir, silent: !verbose, configureBuckets: buckets,
  ...(tlsKey && tlsCert ? { key: readFileSync(tlsKey), cert: readFileSync(tlsCert) } : {}),
});
const addr = await server.run();
process.stdout.write(`PORT ${addr.port}\n`);
const stop = async () => { try { await server.close(); } finally { process.exit(0); } };
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
