-- Seed data, so a freshly migrated database shows two boards with a post each.
-- Written by hand into the file `drizzle-kit generate --custom --name seed` prepared.
INSERT INTO "boards" ("slug", "title", "description") VALUES
	('general', 'General', 'Talk about anything.'),
	('kit', 'Deployment kit', 'Packaging monorepos into one image.');
--> statement-breakpoint
INSERT INTO "posts" ("board_id", "author", "body")
SELECT "id", 'board', 'Welcome to the general board.' FROM "boards" WHERE "slug" = 'general'
UNION ALL
SELECT "id", 'board', 'This board was packaged by atbb.yaml alone.' FROM "boards" WHERE "slug" = 'kit';
