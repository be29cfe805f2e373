import { NonRetryableError } from 'cosmos-platform';

/**
 * Joins animated WebP files into one without decoding or re-encoding a frame: the frames of an animated WebP
 * are self-contained `ANMF` chunks in a RIFF container, so assembling the chunks of a rendition is a copy of
 * their frames under one header — the WebP counterpart of concatenating encoded video chunks.
 */

interface Chunk {
  fourcc: string;
  data: Buffer;
}

function chunksOf(file: Buffer, name: string): Chunk[] {
  if (
    file.length < 12 ||
    file.toString('latin1', 0, 4) !== 'RIFF' ||
    file.toString('latin1', 8, 12) !== 'WEBP'
  )
    throw new NonRetryableError(`${name} is not a WebP file`);
  const end = Math.min(file.length, 8 + file.readUInt32LE(4));
  const out: Chunk[] = [];
  for (let at = 12; at + 8 <= end;) {
    const size = file.readUInt32LE(at + 4);
    if (at + 8 + size > end) throw new NonRetryableError(`${name} is truncated`);
    out.push({ fourcc: file.toString('latin1', at, at + 4), data: file.subarray(at + 8, at + 8 + size) });
    at += 8 + size + (size % 2);
  }
  return out;
}

function header(fourcc: string, size: number): Buffer {
  const h = Buffer.alloc(8);
  h.write(fourcc, 0, 'latin1');
  h.writeUInt32LE(size, 4);
  return h;
}

/** The frames of an animated WebP (0 for a still or not-WebP data). */
export function webpFrames(file: Buffer): number {
  try {
    return chunksOf(file, 'file').filter((c) => c.fourcc === 'ANMF').length;
  } catch {
    return 0;
  }
}

/**
 * One animated WebP holding every frame of `parts`, in order. All parts must share one canvas size; the
 * first frame of each part is marked "do not blend", so no part depends on the one before it.
 */
export function joinAnimatedWebp(parts: Buffer[]): Buffer {
  if (parts.length === 0) throw new NonRetryableError('nothing to join');
  let vp8x: Buffer | undefined;
  let anim: Buffer | undefined;
  const body: Buffer[] = [];
  for (const [i, part] of parts.entries()) {
    const chunks = chunksOf(part, `part ${i}`);
    const x = chunks.find((c) => c.fourcc === 'VP8X')?.data;
    const frames = chunks.filter((c) => c.fourcc === 'ANMF');
    if (!x || frames.length === 0) throw new NonRetryableError(`part ${i} is not an animated WebP`);
    if (!vp8x) {
      vp8x = Buffer.from(x);
      anim = chunks.find((c) => c.fourcc === 'ANIM')?.data;
    } else if (!x.subarray(4, 10).equals(vp8x.subarray(4, 10)))
      throw new NonRetryableError(`part ${i} has another canvas size than part 0`);
    for (const [j, f] of frames.entries()) {
      const data = j === 0 ? Buffer.from(f.data) : f.data;
      // Byte 15 of an ANMF payload holds the blending (bit 1: do not blend) and disposal (bit 0) flags.
      if (j === 0) data[15] = data[15]! | 0x02;
      body.push(header('ANMF', data.length), data);
      if (data.length % 2) body.push(Buffer.alloc(1));
    }
  }
  // Metadata (ICC, EXIF, XMP) is not carried over: drop their flags, keep animation and alpha.
  vp8x![0] = vp8x![0]! & 0x12;
  const animData = anim ?? Buffer.from([0, 0, 0, 0, 0, 0]);
  const head = [header('VP8X', vp8x!.length), vp8x!, header('ANIM', animData.length), animData];
  const size = 4 + [...head, ...body].reduce((n, b) => n + b.length, 0);
  return Buffer.concat([header('RIFF', size), Buffer.from('WEBP', 'latin1'), ...head, ...body]);
}
