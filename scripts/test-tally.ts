// A node --test reporter that `npm test` adds beside spec: how many tests each file reported,
// as one JSON line per file at the end. A run that "passes" while a file's results never
// arrived (a runner killed or cut short) is then a failure, not a smaller number.
export default async function* tally(source: AsyncIterable<{ type: string; data: unknown }>): AsyncGenerator<string> {
  const perFile = new Map<string, { passed: number; failed: number }>();
  for await (const event of source) {
    if (event.type !== 'test:pass' && event.type !== 'test:fail') continue;
    const { file, details } = event.data as { file?: string; details: { type?: string } };
    if (!file || details.type === 'suite') continue;
    const n = perFile.get(file) ?? { passed: 0, failed: 0 };
    if (event.type === 'test:pass') n.passed++;
    else n.failed++;
    perFile.set(file, n);
  }
  for (const [file, n] of perFile) yield `${JSON.stringify({ file, ...n })}\n`;
}
