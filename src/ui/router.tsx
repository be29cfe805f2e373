import { useEffect, useState, type MouseEvent, type ReactNode } from 'react';

/** A tiny router over the History API: the UI has four pages, a library would be most of its bundle. */
const BASE = '/ui';

function current(): { path: string; search: URLSearchParams } {
  const path = location.pathname.startsWith(BASE) ? location.pathname.slice(BASE.length) || '/' : '/';
  return { path, search: new URLSearchParams(location.search) };
}

export function navigate(to: string, replace = false): void {
  const url = `${BASE}${to}`;
  if (replace) history.replaceState(null, '', url);
  else history.pushState(null, '', url);
  dispatchEvent(new PopStateEvent('popstate'));
}

export function useRoute(): { path: string; search: URLSearchParams } {
  const [route, setRoute] = useState(current);
  useEffect(() => {
    const on = (): void => setRoute(current());
    addEventListener('popstate', on);
    return () => removeEventListener('popstate', on);
  }, []);
  return route;
}

export function Link(props: { to: string; children: ReactNode; className?: string; title?: string }) {
  const click = (e: MouseEvent): void => {
    if (e.metaKey || e.ctrlKey || e.shiftKey || e.button !== 0) return;
    e.preventDefault();
    navigate(props.to);
  };
  return (
    <a href={`${BASE}${props.to}`} onClick={click} className={props.className} title={props.title}>
      {props.children}
    </a>
  );
}
