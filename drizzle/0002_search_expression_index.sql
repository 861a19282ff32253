DROP INDEX "tasks_search_idx";--> statement-breakpoint
CREATE INDEX "tasks_search_idx" ON "tasks" USING gin (to_tsvector('english'::regconfig, "title" || ' ' || coalesce("description", '')));--> statement-breakpoint
ALTER TABLE "tasks" DROP COLUMN "search";