// A Node.js function for the worker protocol's test: counts its invocations (module state,
// per execution environment), fails or stays busy when a body asks.
let invocations = 0;

exports.handler = async (event, context) => {
  invocations += 1;
  console.log(`node handler: invocation ${invocations} of ${context.functionName}`);
  const body = JSON.parse(event.Records[0].body);
  if (body.fail) throw new TypeError("asked to fail");
  if (body.busy_seconds) await new Promise((done) => setTimeout(done, body.busy_seconds * 1000));
  return { batchItemFailures: [], invocations, remaining: context.getRemainingTimeInMillis() };
};
