// Synth in tests must never reach AWS: no credentials, no lookups.
process.env.AWS_ACCESS_KEY_ID = '';
process.env.AWS_SECRET_ACCESS_KEY = '';
process.env.AWS_EC2_METADATA_DISABLED = 'true';
// The SDK's Node.js version notice (@aws-sdk/core emitWarningIfUnsupportedVersion) is about the
// machine running the tests, not about the code under test.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';
