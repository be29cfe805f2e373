import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { ExecutionPage } from './pages/ExecutionPage.js';
import { ExecutionsPage } from './pages/ExecutionsPage.js';
import { PoolsPage } from './pages/PoolsPage.js';
import { ServicesPage } from './pages/ServicesPage.js';
import { Link, useRoute } from './router.js';
import './styles.css';

function App() {
  const { path, search } = useRoute();
  const execution = /^\/executions\/([^/]+)$/.exec(path);
  const section = execution || path === '/' ? 'executions' : path.slice(1);
  return (
    <>
      <header className="top">
        <Link to="/" className="brand">
          Cosmos
        </Link>
        <nav>
          <Link to="/" className={section === 'executions' ? 'on' : ''}>
            Executions
          </Link>
          <Link to="/services" className={section === 'services' ? 'on' : ''}>
            Services
          </Link>
          <Link to="/pools" className={section === 'pools' ? 'on' : ''}>
            Pools and queues
          </Link>
        </nav>
      </header>
      <main>
        {execution ? (
          <ExecutionPage key={execution[1]} id={decodeURIComponent(execution[1]!)} />
        ) : path === '/services' ? (
          <ServicesPage />
        ) : path === '/pools' ? (
          <PoolsPage />
        ) : path === '/' ? (
          <ExecutionsPage search={search} />
        ) : (
          <p className="error">
            No page here. <Link to="/">Executions</Link>
          </p>
        )}
      </main>
    </>
  );
}

createRoot(document.getElementById('root')!).render(
  <StrictMode>
    <App />
  </StrictMode>,
);
