-- Keys are now stored with their response; a row without one is a claim left by a request that never finished under the old scheme, and is dropped so that the key can be used again.
DELETE FROM "idempotency_keys" WHERE "response_status" IS NULL OR "response_headers" IS NULL OR "response_body" IS NULL;--> statement-breakpoint
ALTER TABLE "idempotency_keys" ALTER COLUMN "response_status" SET NOT NULL;--> statement-breakpoint
ALTER TABLE "idempotency_keys" ALTER COLUMN "response_headers" SET NOT NULL;--> statement-breakpoint
ALTER TABLE "idempotency_keys" ALTER COLUMN "response_body" SET NOT NULL;