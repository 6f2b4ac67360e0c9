/**
 * Renders rules/FEATURES.md from detector/features.ts. Run `node dist/detector/features-doc.js`
 * after changing features; test/unit/features-doc.test.ts fails while the file is stale.
 */
import fs from 'node:fs';
import path from 'node:path';
import { LAYOUTS, type AnyLayout } from './features';
import { defaultRulesDir } from './rules/loader';

const INTRO = `# Features

Generated from \`detector/features.ts\` by \`node dist/detector/features-doc.js\`; do not edit.

What a rule's \`when\` can name. A rule grouped by \`src\` or \`src_prefix/N\` sees the source
features, one grouped by \`dst\` or \`dst_prefix/N\` the destination features. Every feature is a
CEL double. Counters are summed over the rule's \`window\` (and over every address of a prefix
group); derived features are computed from those sums, and rates divide by the window's length.
Test cases in rule files give counters only.
`;

function escape(text: string): string {
  return text.replace(/\|/g, '\\|');
}

function section(title: string, layout: AnyLayout): string {
  const rows = [
    ...layout.counters.map((c) => `| \`${c.name}\` | ${c.unit} | counter | ${escape(c.meaning)} |`),
    ...layout.derived.map((d) => `| \`${d.name}\` | ${d.unit} | \`${escape(d.formula)}\` | ${escape(d.meaning)} |`),
  ];
  return `## ${title}\n\n| feature | unit | computed as | meaning |\n|---|---|---|---|\n${rows.join('\n')}\n`;
}

export function featuresMarkdown(): string {
  return [INTRO, section('Source features (`group_by: src`, `src_prefix/N`)', LAYOUTS.source), section('Destination features (`group_by: dst`, `dst_prefix/N`)', LAYOUTS.destination)].join('\n');
}

export function featuresDocPath(): string {
  return path.join(defaultRulesDir(), 'FEATURES.md');
}

if (require.main === module) {
  fs.writeFileSync(featuresDocPath(), featuresMarkdown());
  process.stdout.write(`wrote ${path.relative(process.cwd(), featuresDocPath())}\n`);
}
