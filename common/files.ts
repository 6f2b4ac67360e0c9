/**
 * Reading files that someone else may have put in place (rule files, token and secret files):
 * only regular files, never more than a limit, and for secrets only files no one but the owner
 * can read. A size from stat() is not enough: a FIFO or a symlink to /dev/zero reports 0 bytes
 * and then blocks or never ends, so the file is opened without blocking, checked with fstat on
 * the open descriptor (no race with a rename), and read up to the limit plus one byte.
 */
import fs from 'node:fs';

export interface ReadLimits {
  maxBytes: number;
  /** A secret: refuse the file if its group or others may read it. */
  secret?: boolean;
}

/** Why a file was not read, without the file name (callers place it, e.g. as `file:1:1:`). */
export class FileReadError extends Error {
  constructor(readonly reason: 'not-regular' | 'too-big' | 'not-private', message: string) {
    super(message);
  }
}

function kindOf(stat: fs.Stats): string {
  if (stat.isDirectory()) return 'a directory';
  if (stat.isFIFO()) return 'a FIFO';
  if (stat.isCharacterDevice() || stat.isBlockDevice()) return 'a device';
  if (stat.isSocket()) return 'a socket';
  return 'not a regular file';
}

/** The file's text (UTF-8); throws FileReadError with the reason, or the system error if it cannot be opened. */
export function readBoundedFile(file: string, limits: ReadLimits): string {
  const fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK | fs.constants.O_NOCTTY);
  try {
    const stat = fs.fstatSync(fd);
    if (!stat.isFile()) throw new FileReadError('not-regular', `${kindOf(stat)}, not a regular file: refusing to read it`);
    if (limits.secret && (stat.mode & 0o077) !== 0) {
      throw new FileReadError('not-private', `holds a secret but its group or others may read it (mode ${(stat.mode & 0o777).toString(8).padStart(4, '0')}): chmod 600 ${file}`);
    }
    const buffer = Buffer.alloc(limits.maxBytes + 1);
    let length = 0;
    while (length < buffer.length) {
      const n = fs.readSync(fd, buffer, length, buffer.length - length, null);
      if (n === 0) break;
      length += n;
    }
    if (length > limits.maxBytes) throw new FileReadError('too-big', `the file is ${Math.max(stat.size, length)} bytes; the limit is ${limits.maxBytes}`);
    return buffer.toString('utf8', 0, length);
  } finally {
    fs.closeSync(fd);
  }
}
