// Synth in tests must never reach AWS: no credentials, no lookups.
process.env.AWS_ACCESS_KEY_ID = '';
process.env.AWS_SECRET_ACCESS_KEY = '';
process.env.AWS_EC2_METADATA_DISABLED = 'true';
