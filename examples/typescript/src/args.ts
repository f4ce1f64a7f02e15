/** The orchestrator's address: `--server host:port`, else DURABLE_ADDRESS, else 127.0.0.1:7411. */
export function serverAddress(argv: readonly string[] = process.argv.slice(2)): string {
  const at = argv.indexOf("--server");
  if (at >= 0) {
    const value = argv[at + 1];
    if (value === undefined || value === "") throw new Error("--server needs an address (host:port)");
    return value;
  }
  return process.env.DURABLE_ADDRESS || "127.0.0.1:7411";
}
