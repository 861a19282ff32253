-- Who may see which task: a row per member of the task's project (docs/decisions/0036-task-visibility.md).
-- The triggers come first: they lock the tables they are on, so no write can slip between them and
-- the fill; the key is built once, after it.
--
-- Each statement in a trigger function runs in READ COMMITTED with a snapshot of its own, taken
-- after the lock before it. A task write holds its project's row FOR KEY SHARE (the foreign key's
-- check on a create or a move, the trigger's own lock on a delete or on the project a move leaves)
-- until it commits; a change of membership takes the project's row FOR UPDATE, which waits for
-- those writes and makes new ones wait for it. Whichever comes second sees what the first did.
CREATE TABLE "task_visibility" (
	"user_id" uuid NOT NULL,
	"created_at" timestamp with time zone NOT NULL,
	"task_id" uuid NOT NULL
);
--> statement-breakpoint
CREATE FUNCTION "task_visibility_tasks_created"() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO "task_visibility" ("user_id", "created_at", "task_id")
    SELECT "m"."user_id", "added"."created_at", "added"."id"
    FROM "added" JOIN "project_members" "m" ON "m"."project_id" = "added"."project_id";
  RETURN NULL;
END $$;
--> statement-breakpoint
CREATE TRIGGER "task_visibility_tasks_created" AFTER INSERT ON "tasks"
  REFERENCING NEW TABLE AS "added" FOR EACH STATEMENT EXECUTE FUNCTION "task_visibility_tasks_created"();
--> statement-breakpoint
CREATE FUNCTION "task_visibility_tasks_deleted"() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM 1 FROM "projects" WHERE "id" IN (SELECT DISTINCT "project_id" FROM "removed") ORDER BY "id" FOR KEY SHARE;
  DELETE FROM "task_visibility" "v" USING "removed" JOIN "project_members" "m" ON "m"."project_id" = "removed"."project_id"
    WHERE "v"."user_id" = "m"."user_id" AND "v"."created_at" = "removed"."created_at" AND "v"."task_id" = "removed"."id";
  RETURN NULL;
END $$;
--> statement-breakpoint
CREATE TRIGGER "task_visibility_tasks_deleted" AFTER DELETE ON "tasks"
  REFERENCING OLD TABLE AS "removed" FOR EACH STATEMENT EXECUTE FUNCTION "task_visibility_tasks_deleted"();
--> statement-breakpoint
CREATE FUNCTION "task_visibility_tasks_moved"() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM 1 FROM "projects" WHERE "id" = OLD."project_id" FOR KEY SHARE;
  DELETE FROM "task_visibility" "v" USING "project_members" "m"
    WHERE "m"."project_id" = OLD."project_id" AND "v"."user_id" = "m"."user_id" AND "v"."created_at" = OLD."created_at" AND "v"."task_id" = OLD."id";
  INSERT INTO "task_visibility" ("user_id", "created_at", "task_id")
    SELECT "m"."user_id", NEW."created_at", NEW."id" FROM "project_members" "m" WHERE "m"."project_id" = NEW."project_id";
  RETURN NULL;
END $$;
--> statement-breakpoint
CREATE TRIGGER "task_visibility_tasks_moved" AFTER UPDATE OF "project_id" ON "tasks"
  FOR EACH ROW WHEN (OLD."project_id" IS DISTINCT FROM NEW."project_id") EXECUTE FUNCTION "task_visibility_tasks_moved"();
--> statement-breakpoint
CREATE FUNCTION "task_visibility_member_added"() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM 1 FROM "projects" WHERE "id" = NEW."project_id" FOR UPDATE;
  INSERT INTO "task_visibility" ("user_id", "created_at", "task_id")
    SELECT NEW."user_id", "t"."created_at", "t"."id" FROM "tasks" "t" WHERE "t"."project_id" = NEW."project_id"
    ON CONFLICT DO NOTHING;
  RETURN NULL;
END $$;
--> statement-breakpoint
CREATE TRIGGER "task_visibility_member_added" AFTER INSERT ON "project_members"
  FOR EACH ROW EXECUTE FUNCTION "task_visibility_member_added"();
--> statement-breakpoint
CREATE FUNCTION "task_visibility_member_removed"() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM 1 FROM "projects" WHERE "id" = OLD."project_id" FOR UPDATE;
  DELETE FROM "task_visibility" "v" USING "tasks" "t"
    WHERE "t"."project_id" = OLD."project_id" AND "v"."user_id" = OLD."user_id" AND "v"."created_at" = "t"."created_at" AND "v"."task_id" = "t"."id";
  RETURN NULL;
END $$;
--> statement-breakpoint
CREATE TRIGGER "task_visibility_member_removed" AFTER DELETE ON "project_members"
  FOR EACH ROW EXECUTE FUNCTION "task_visibility_member_removed"();
--> statement-breakpoint
-- A project's deletion takes its tasks and members by cascade, and the triggers of a cascade fire
-- only when both are gone, too late to find one through the other: its rows go first, here.
CREATE FUNCTION "task_visibility_project_deleted"() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  DELETE FROM "task_visibility" "v" USING "tasks" "t" JOIN "project_members" "m" ON "m"."project_id" = "t"."project_id"
    WHERE "t"."project_id" = OLD."id" AND "v"."user_id" = "m"."user_id" AND "v"."created_at" = "t"."created_at" AND "v"."task_id" = "t"."id";
  RETURN OLD;
END $$;
--> statement-breakpoint
CREATE TRIGGER "task_visibility_project_deleted" BEFORE DELETE ON "projects"
  FOR EACH ROW EXECUTE FUNCTION "task_visibility_project_deleted"();
--> statement-breakpoint
INSERT INTO "task_visibility" ("user_id", "created_at", "task_id")
  SELECT "m"."user_id", "t"."created_at", "t"."id" FROM "tasks" "t" JOIN "project_members" "m" ON "m"."project_id" = "t"."project_id";
--> statement-breakpoint
ALTER TABLE "task_visibility" ADD CONSTRAINT "task_visibility_user_id_created_at_task_id_pk" PRIMARY KEY("user_id","created_at","task_id");
--> statement-breakpoint
-- A task appears once per member, but never twice in one user's range, which is all the list joins
-- from: told so, the planner reads a page's tasks by key directly instead of through a cache
-- (Memoize) that costs more than it saves.
ALTER TABLE "task_visibility" ALTER COLUMN "task_id" SET (n_distinct = -1);
--> statement-breakpoint
ANALYZE "task_visibility";
