import { useEffect, useState } from 'react';
import { blobUrl } from '../api.js';

const REF = /^sha256:[0-9a-f]{64}$/;

/** A blob reference: a link, and the picture itself when it is an image. */
export function BlobPreview({ blob }: { blob: string }) {
  const [type, setType] = useState<string>();
  useEffect(() => {
    let alive = true;
    fetch(blobUrl(blob), { method: 'HEAD' }).then(
      (r) => alive && setType(r.headers.get('content-type') ?? ''),
      () => undefined,
    );
    return () => {
      alive = false;
    };
  }, [blob]);
  return (
    <span className="blob">
      <a href={blobUrl(blob)} target="_blank" rel="noreferrer" className="mono">
        {blob.slice(0, 19)}…
      </a>
      {type && <span className="muted"> {type}</span>}
      {type?.startsWith('image/') && (
        <img src={blobUrl(blob)} alt={`blob ${blob.slice(7, 19)}`} loading="lazy" data-testid="blob-image" />
      )}
    </span>
  );
}

/** JSON, indented, with blob references shown as previews. Long arrays are cut. */
export function JsonView({ value, depth = 0 }: { value: unknown; depth?: number }) {
  if (typeof value === 'string' && REF.test(value)) return <BlobPreview blob={value} />;
  if (value === null || typeof value !== 'object')
    return <span className={`json ${typeof value}`}>{JSON.stringify(value)}</span>;
  const entries = Array.isArray(value)
    ? (value as unknown[]).slice(0, 100).map((v, i) => [String(i), v] as const)
    : Object.entries(value as Record<string, unknown>);
  if (entries.length === 0) return <span className="json">{Array.isArray(value) ? '[]' : '{}'}</span>;
  return (
    <ul className="json-tree">
      {entries.map(([k, v]) => (
        <li key={k}>
          <span className="json-key">{k}:</span> <JsonView value={v} depth={depth + 1} />
        </li>
      ))}
      {Array.isArray(value) && value.length > 100 && <li className="muted">… {value.length - 100} more</li>}
    </ul>
  );
}
