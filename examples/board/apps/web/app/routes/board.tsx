import { data, Form, redirect, useNavigation } from 'react-router';
import { callApi } from '../api.server';
import { ErrorMessage } from '../components/ErrorMessage';
import { LikeButton } from '../components/LikeButton';
import type { Route } from './+types/board';

interface BoardPosts {
  board: { slug: string; title: string; description: string };
  posts: { id: number; author: string; body: string; createdAt: string }[];
}

export function meta({ data: loaderData }: Route.MetaArgs) {
  return [{ title: loaderData ? loaderData.board.title : 'Board' }];
}

export async function loader({ params }: Route.LoaderArgs) {
  const slug = encodeURIComponent(params.slug);
  const result = await callApi<BoardPosts>(`/api/boards/${slug}/posts`);
  if (result.status === 404) throw data({ message: `There is no board called "${params.slug}".` }, { status: 404 });
  return result.body;
}

export async function action({ params, request }: Route.ActionArgs) {
  const form = await request.formData();
  const slug = encodeURIComponent(params.slug);
  const result = await callApi<{ error?: string }>(`/api/boards/${slug}/posts`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ author: String(form.get('author') ?? ''), body: String(form.get('body') ?? '') }),
  });
  if (result.status === 404) throw data({ message: `There is no board called "${params.slug}".` }, { status: 404 });
  if (result.status === 400) return data({ error: result.body.error ?? 'The post was refused.' }, { status: 400 });
  return redirect(`/b/${slug}`);
}

export function headers({ errorHeaders, loaderHeaders }: Route.HeadersArgs) {
  return errorHeaders ?? loaderHeaders;
}

export default function BoardPage({ loaderData, actionData }: Route.ComponentProps) {
  const { board, posts } = loaderData;
  const navigation = useNavigation();
  return (
    <>
      <h1>{board.title}</h1>
      <p>{board.description}</p>
      {posts.length === 0 ? <p>No posts yet.</p> : null}
      <ul className="posts">
        {posts.map((post) => (
          <li key={post.id}>
            <strong>{post.author}</strong>: {post.body}
            <LikeButton />
          </li>
        ))}
      </ul>
      <Form method="post">
        <label>
          Name <input name="author" maxLength={40} placeholder="anonymous" />
        </label>
        <label>
          Post <textarea name="body" required maxLength={2000} rows={3} />
        </label>
        {actionData?.error ? <p className="error">{actionData.error}</p> : null}
        <button type="submit" disabled={navigation.state === 'submitting'}>
          Post
        </button>
      </Form>
    </>
  );
}

export function ErrorBoundary({ error }: Route.ErrorBoundaryProps) {
  return <ErrorMessage error={error} />;
}
