import { html } from 'hono/html';
import type { HtmlEscapedString } from 'hono/utils/html';
import type { Category, Forum } from './appview.js';

type Html = HtmlEscapedString | Promise<HtmlEscapedString>;

// `html` escapes every interpolated value, which is what makes it safe to
// put forum data (user-controlled in a real deployment) into the page.
function layout(title: string, styleHref: string, body: Html): Html {
  return html`<!doctype html>
<html lang="en">
  <head>
    <meta charset="utf-8">
    <meta name="viewport" content="width=device-width, initial-scale=1">
    <title>${title}</title>
    <link rel="stylesheet" href="${styleHref}">
  </head>
  <body>
${body}
  </body>
</html>
`;
}

export function forumPage(forum: Forum, categories: Category[], styleHref: string): Html {
  const items = categories.map(
    (c) => html`      <li class="category" id="${c.slug}">
        <h3>${c.name}</h3>
        <p>${c.description}</p>
      </li>
`,
  );
  return layout(
    forum.name,
    styleHref,
    html`    <header>
      <h1>${forum.name}</h1>
      <p>${forum.description}</p>
    </header>
    <main>
      <h2>Categories</h2>
      <ul class="categories">
${items}      </ul>
    </main>
    <footer>Powered by atBB${forum.did ? html` · ${forum.did}` : ''}</footer>`,
  );
}

export function errorPage(title: string, message: string, styleHref: string): Html {
  return layout(
    title,
    styleHref,
    html`    <main class="error">
      <h1>${title}</h1>
      <p>${message}</p>
    </main>`,
  );
}
