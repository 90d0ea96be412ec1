// The Pods' way to the loopback-only apiserver: `node forward.ts HOST PORT TARGET_PORT` accepts
// on HOST:PORT (the node's bridge gateway) and pipes each connection to 127.0.0.1:TARGET_PORT.
// TLS passes through untouched; the apiserver's serving cert covers HOST (its advertise address).
import net from 'node:net';

const [host, port, targetPort] = process.argv.slice(2);
if (!host || !port || !targetPort) {
  console.error('usage: node forward.ts HOST PORT TARGET_PORT');
  process.exit(64);
}
const server = net.createServer((c) => {
  const up = net.connect(Number(targetPort), '127.0.0.1');
  c.pipe(up).pipe(c);
  const end = (): void => {
    c.destroy();
    up.destroy();
  };
  c.on('error', end);
  up.on('error', end);
  c.on('close', end);
  up.on('close', end);
});
server.listen(Number(port), host, () => console.log(`forwarding ${host}:${port} to 127.0.0.1:${targetPort}`));
