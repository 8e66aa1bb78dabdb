// The benchmark's receiver: answers 204 to every POST and prints, once `N` requests arrived,
// the time from the first to the last (one JSON line on stdout). Usage: node receiver.mjs PORT N
import http from "node:http";
const [port, n] = [Number(process.argv[2]), Number(process.argv[3])];
let count = 0, first = 0n;
const ids = new Set();
http.createServer((req, res) => {
  req.resume();
  req.on("end", () => {
    if (count === 0) first = process.hrtime.bigint();
    count++;
    ids.add(req.headers["webhook-id"]);
    res.writeHead(204).end();
    if (count === n) {
      const ms = Number(process.hrtime.bigint() - first) / 1e6;
      console.log(JSON.stringify({ requests: count, distinct: ids.size, ms, per_second: Math.round((n - 1) / (ms / 1000)) }));
    }
  });
}).listen(port, "127.0.0.1", () => console.error(`receiver on ${port}`));
