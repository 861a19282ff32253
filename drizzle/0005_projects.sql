-- Projects and their members; every account gets its Inbox, and every task moves into its owner's
-- Inbox. Data is moved between the schema steps, and the old indexes are dropped before the tasks
-- are rewritten (the new ones are built once, at the end), so a large table is written once.
CREATE TYPE "public"."project_role" AS ENUM('owner', 'editor', 'viewer');--> statement-breakpoint
CREATE TABLE "projects" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"name" text NOT NULL,
	"description" text,
	"is_inbox" boolean DEFAULT false NOT NULL,
	"owner_id" uuid NOT NULL,
	"version" integer DEFAULT 1 NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "project_members" (
	"project_id" uuid NOT NULL,
	"user_id" uuid NOT NULL,
	"role" "project_role" NOT NULL,
	"version" integer DEFAULT 1 NOT NULL,
	"added_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "project_members_project_id_user_id_pk" PRIMARY KEY("project_id","user_id")
);
--> statement-breakpoint
ALTER TABLE "projects" ADD CONSTRAINT "projects_owner_id_users_id_fk" FOREIGN KEY ("owner_id") REFERENCES "public"."users"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "project_members" ADD CONSTRAINT "project_members_project_id_projects_id_fk" FOREIGN KEY ("project_id") REFERENCES "public"."projects"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "project_members" ADD CONSTRAINT "project_members_user_id_users_id_fk" FOREIGN KEY ("user_id") REFERENCES "public"."users"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
INSERT INTO "projects" ("name", "is_inbox", "owner_id", "created_at", "updated_at")
  SELECT 'Inbox', true, "id", "created_at", "created_at" FROM "users";--> statement-breakpoint
INSERT INTO "project_members" ("project_id", "user_id", "role", "added_at")
  SELECT "id", "owner_id", 'owner', "created_at" FROM "projects";--> statement-breakpoint
CREATE UNIQUE INDEX "project_members_user_id_project_id_key" ON "project_members" USING btree ("user_id","project_id");--> statement-breakpoint
CREATE INDEX "project_members_project_added_at_idx" ON "project_members" USING btree ("project_id","added_at","user_id");--> statement-breakpoint
CREATE UNIQUE INDEX "projects_owner_inbox_key" ON "projects" USING btree ("owner_id") WHERE "projects"."is_inbox";--> statement-breakpoint
CREATE INDEX "projects_owner_id_idx" ON "projects" USING btree ("owner_id");--> statement-breakpoint
DROP INDEX "tasks_owner_created_at_idx";--> statement-breakpoint
DROP INDEX "tasks_owner_due_at_asc_idx";--> statement-breakpoint
DROP INDEX "tasks_owner_due_at_desc_idx";--> statement-breakpoint
DROP INDEX "tasks_owner_priority_idx";--> statement-breakpoint
DROP INDEX "tasks_owner_title_idx";--> statement-breakpoint
ALTER TABLE "tasks" ADD COLUMN "project_id" uuid;--> statement-breakpoint
ALTER TABLE "tasks" ADD COLUMN "assignee_id" uuid;--> statement-breakpoint
ALTER TABLE "tasks" ADD COLUMN "created_by" uuid;--> statement-breakpoint
-- Only where the task lives and who made it change: version and updated_at (the ETag) stay.
UPDATE "tasks" SET "project_id" = "projects"."id", "created_by" = "tasks"."owner_id"
  FROM "projects" WHERE "projects"."owner_id" = "tasks"."owner_id" AND "projects"."is_inbox";--> statement-breakpoint
ALTER TABLE "tasks" ALTER COLUMN "project_id" SET NOT NULL;--> statement-breakpoint
ALTER TABLE "tasks" DROP CONSTRAINT "tasks_owner_id_users_id_fk";--> statement-breakpoint
ALTER TABLE "tasks" DROP COLUMN "owner_id";--> statement-breakpoint
ALTER TABLE "tasks" ADD CONSTRAINT "tasks_project_id_projects_id_fk" FOREIGN KEY ("project_id") REFERENCES "public"."projects"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "tasks" ADD CONSTRAINT "tasks_assignee_id_users_id_fk" FOREIGN KEY ("assignee_id") REFERENCES "public"."users"("id") ON DELETE set null ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "tasks" ADD CONSTRAINT "tasks_created_by_users_id_fk" FOREIGN KEY ("created_by") REFERENCES "public"."users"("id") ON DELETE set null ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "tasks_project_created_at_idx" ON "tasks" USING btree ("project_id","created_at","id");--> statement-breakpoint
CREATE INDEX "tasks_project_due_at_asc_idx" ON "tasks" USING btree ("project_id",coalesce("due_at", 'infinity'::timestamptz),"id");--> statement-breakpoint
CREATE INDEX "tasks_project_due_at_desc_idx" ON "tasks" USING btree ("project_id",coalesce("due_at", '-infinity'::timestamptz),"id");--> statement-breakpoint
CREATE INDEX "tasks_project_priority_idx" ON "tasks" USING btree ("project_id","priority","id");--> statement-breakpoint
CREATE INDEX "tasks_project_title_idx" ON "tasks" USING btree ("project_id",("title" collate "C"),"id");--> statement-breakpoint
CREATE INDEX "tasks_assignee_id_idx" ON "tasks" USING btree ("assignee_id","project_id") WHERE "tasks"."assignee_id" is not null;
