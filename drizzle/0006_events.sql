CREATE TYPE "public"."event_type" AS ENUM('task.created', 'task.updated', 'task.deleted', 'project.created', 'project.updated', 'project.deleted', 'member.added', 'member.updated', 'member.removed');--> statement-breakpoint
CREATE TABLE "event_purges" (
	"singleton" boolean PRIMARY KEY DEFAULT true NOT NULL,
	"txid" "xid8" NOT NULL,
	"id" bigint NOT NULL,
	"purged_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "events" (
	"id" bigint GENERATED ALWAYS AS IDENTITY (sequence name "events_id_seq" INCREMENT BY 1 MINVALUE 1 MAXVALUE 9223372036854775807 START WITH 1 CACHE 64),
	"txid" "xid8" DEFAULT pg_current_xact_id() NOT NULL,
	"type" "event_type" NOT NULL,
	"occurred_at" timestamp with time zone DEFAULT now() NOT NULL,
	"actor_id" uuid,
	"project_id" uuid NOT NULL,
	"audience" uuid[],
	"data" jsonb NOT NULL
);
--> statement-breakpoint
CREATE INDEX "events_project_position_idx" ON "events" USING btree ("project_id","txid","id");--> statement-breakpoint
CREATE INDEX "events_audience_idx" ON "events" USING gin ("audience") WHERE "events"."audience" is not null;--> statement-breakpoint
CREATE INDEX "events_occurred_at_idx" ON "events" USING brin ("occurred_at");