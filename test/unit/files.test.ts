/**
 * Files read from places others can write to: only regular files, at most the limit (a FIFO or
 * /dev/zero would block or never end), and secrets only when no one but the owner can read them.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { FileReadError, readBoundedFile } from '../../common/files';

let dir: string;

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xdp-ids-files-'));
});

afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

function reason(file: string, limits: Parameters<typeof readBoundedFile>[1]): [string, string] {
  try {
    readBoundedFile(file, limits);
  } catch (err) {
    expect(err).toBeInstanceOf(FileReadError);
    return [(err as FileReadError).reason, (err as Error).message];
  }
  throw new Error(`${file} was read`);
}

test('a regular file within the limit is read whole; symlinks to one are followed', () => {
  fs.writeFileSync(path.join(dir, 'a.yaml'), 'id: a\n');
  fs.symlinkSync(path.join(dir, 'a.yaml'), path.join(dir, 'link.yaml'));
  expect(readBoundedFile(path.join(dir, 'a.yaml'), { maxBytes: 6 })).toBe('id: a\n');
  expect(readBoundedFile(path.join(dir, 'link.yaml'), { maxBytes: 6 })).toBe('id: a\n');
});

test('one byte over the limit is refused with the size', () => {
  fs.writeFileSync(path.join(dir, 'big'), 'x'.repeat(11));
  expect(reason(path.join(dir, 'big'), { maxBytes: 10 })).toEqual(['too-big', 'the file is 11 bytes; the limit is 10']);
});

test('a FIFO without a writer, /dev/zero behind a symlink and a directory are refused at once', () => {
  execFileSync('mkfifo', [path.join(dir, 'fifo.yaml')]);
  fs.symlinkSync('/dev/zero', path.join(dir, 'zero.yaml'));
  fs.mkdirSync(path.join(dir, 'dir.yaml'));
  expect(reason(path.join(dir, 'fifo.yaml'), { maxBytes: 10 })).toEqual(['not-regular', 'a FIFO, not a regular file: refusing to read it']);
  expect(reason(path.join(dir, 'zero.yaml'), { maxBytes: 10 })).toEqual(['not-regular', 'a device, not a regular file: refusing to read it']);
  expect(reason(path.join(dir, 'dir.yaml'), { maxBytes: 10 })).toEqual(['not-regular', 'a directory, not a regular file: refusing to read it']);
});

test('a secret readable by group or others is refused with the chmod that fixes it', () => {
  const file = path.join(dir, 'tokens');
  fs.writeFileSync(file, 'secret\n', { mode: 0o640 });
  fs.chmodSync(file, 0o640);
  expect(reason(file, { maxBytes: 100, secret: true })).toEqual(['not-private', `holds a secret but its group or others may read it (mode 0640): chmod 600 ${file}`]);
  fs.chmodSync(file, 0o604);
  expect(reason(file, { maxBytes: 100, secret: true })[0]).toBe('not-private');
  fs.chmodSync(file, 0o600);
  expect(readBoundedFile(file, { maxBytes: 100, secret: true })).toBe('secret\n');
  fs.chmodSync(file, 0o644);
  expect(readBoundedFile(file, { maxBytes: 100 })).toBe('secret\n');
});
