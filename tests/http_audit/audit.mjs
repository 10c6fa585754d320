// GraphQL over HTTP conformance: runs graphql-http's server audit suite against the URL given and
// prints every result as one JSON array: [{id, name, status: "ok"|"notice"|"warn"|"error", reason, httpStatus}].
// Used by tests/test_http_audit.py; exits non-zero only when the suite itself cannot run.
import { auditServer } from 'graphql-http';

const url = process.argv[2];
if (!url) {
  console.error('usage: node audit.mjs URL');
  process.exit(2);
}

const results = await auditServer({ url });
const report = results.map((result) => ({
  id: result.id,
  name: result.name,
  status: result.status,
  reason: result.status === 'ok' ? null : result.reason,
  httpStatus: result.status === 'ok' ? null : result.response.status,
}));
process.stdout.write(JSON.stringify(report) + '\n');
