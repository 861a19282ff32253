DROP INDEX "tasks_tags_idx";--> statement-breakpoint
DROP INDEX "tasks_search_idx";--> statement-breakpoint
CREATE INDEX "tasks_tags_search_idx" ON "tasks" USING gin ("tags",to_tsvector('english'::regconfig, "title" || ' ' || coalesce("description", '')));