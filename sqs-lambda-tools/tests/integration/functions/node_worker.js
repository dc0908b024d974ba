// A worker of the worker protocol (README, "The worker protocol") for a Node.js handler:
// `node node_worker.js`, with _HANDLER = "file.function" in LAMBDA_TASK_ROOT.
const fs = require("fs"), readline = require("readline");
const replyFd = Number(process.env.SQSL_REPLY_FD);
const send = (message) => fs.writeSync(replyFd, JSON.stringify(message) + "\n");
const [file, name] = process.env._HANDLER.split(".");
const started = performance.now();
let handler;
try {
  handler = require(`${process.env.LAMBDA_TASK_ROOT}/${file}`)[name];
} catch (error) {
  send({ type: "init_error", errorType: error.name, errorMessage: error.message,
         stackTrace: String(error.stack).split("\n") });
  process.exit(1);
}
send({ type: "ready", initDurationMs: performance.now() - started });
const requests = fs.createReadStream(null, { fd: Number(process.env.SQSL_REQUEST_FD) });
readline.createInterface({ input: requests }).on("line", async (line) => {
  const message = JSON.parse(line);
  if (message.type !== "invoke") return;
  const context = { awsRequestId: message.requestId, functionName: message.functionName,
                    getRemainingTimeInMillis: () => message.deadlineMs - Date.now() };
  try {
    const response = await handler(message.event, context);
    send({ type: "result", requestId: message.requestId, response: response ?? null });
  } catch (error) {
    send({ type: "error", requestId: message.requestId, errorType: error.name,
           errorMessage: error.message, stackTrace: String(error.stack).split("\n") });
  }
}).on("close", () => process.exit(0));
