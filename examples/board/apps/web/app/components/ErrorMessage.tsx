import { isRouteErrorResponse } from 'react-router';

// Shared by every ErrorBoundary: a readable page for the errors loaders throw
// (503 API unavailable, 404 no such board) and a generic one for bugs.
export function ErrorMessage({ error }: { error: unknown }) {
  if (isRouteErrorResponse(error)) {
    const message =
      typeof error.data === 'object' && error.data !== null && 'message' in error.data
        ? String(error.data.message)
        : error.status === 404
          ? 'There is no page at this address.'
          : error.statusText;
    const title = error.status === 503 ? 'Service unavailable' : error.status === 404 ? 'Not found' : `Error ${error.status}`;
    return (
      <section className="error" role="alert">
        <h1>{title}</h1>
        <p>{message}</p>
      </section>
    );
  }
  return (
    <section className="error" role="alert">
      <h1>Something went wrong</h1>
      <p>The page could not be shown.</p>
    </section>
  );
}
