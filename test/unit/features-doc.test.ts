import fs from 'node:fs';
import { featuresDocPath, featuresMarkdown } from '../../detector/features-doc';
import { featuresOf } from '../../detector/features';

test('rules/FEATURES.md is generated from detector/features.ts (run node dist/detector/features-doc.js)', () => {
  expect(fs.readFileSync(featuresDocPath(), 'utf8')).toBe(featuresMarkdown());
});

test('FEATURES.md lists every feature', () => {
  const doc = featuresMarkdown();
  for (const f of [...featuresOf('source'), ...featuresOf('destination')]) expect(doc).toContain(`| \`${f.name}\` |`);
});
