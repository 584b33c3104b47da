import { Link } from 'react-router';
import { callApi } from '../api.server';
import { ErrorMessage } from '../components/ErrorMessage';
import type { Route } from './+types/home';

interface BoardSummary {
  slug: string;
  title: string;
  description: string;
  postCount: number;
}
interface Category {
  slug: string;
  name: string;
  description: string;
}

export function meta() {
  return [{ title: 'Boards' }];
}

export async function loader() {
  const [boards, categories] = await Promise.all([
    callApi<BoardSummary[]>('/api/boards'),
    callApi<Category[]>('/api/categories'),
  ]);
  return { boards: boards.body, categories: categories.body };
}

// A thrown route error keeps its headers (Retry-After on a 503).
export function headers({ errorHeaders, loaderHeaders }: Route.HeadersArgs) {
  return errorHeaders ?? loaderHeaders;
}

export default function Home({ loaderData }: Route.ComponentProps) {
  const { boards, categories } = loaderData;
  return (
    <>
      <h1>Boards</h1>
      <ul className="boards">
        {boards.map((board) => (
          <li key={board.slug}>
            <Link to={`/b/${board.slug}`}>{board.title}</Link> ({board.postCount} posts): {board.description}
          </li>
        ))}
      </ul>
      <h2>Categories</h2>
      <ul className="categories">
        {categories.map((category) => (
          <li key={category.slug}>
            <strong>{category.name}</strong>: {category.description}
          </li>
        ))}
      </ul>
    </>
  );
}

export function ErrorBoundary({ error }: Route.ErrorBoundaryProps) {
  return <ErrorMessage error={error} />;
}
