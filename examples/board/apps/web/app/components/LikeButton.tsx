import { useState } from 'react';

// Client-side state only (nothing is saved): it counts only once the page has
// hydrated, which makes hydration easy to see.
export function LikeButton() {
  const [likes, setLikes] = useState(0);
  return (
    <button type="button" className="like" onClick={() => setLikes((n) => n + 1)}>
      Like ({likes})
    </button>
  );
}
