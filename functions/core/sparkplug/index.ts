/**
 * Public entry point of the Sparkplug B module: the codec (decode/encode, datatype interpretation,
 * STATE parsing), the payload model, and the host state machine with its state port
 * (`SparkplugStateStore`) and in-memory adapter. Callers outside `functions/core/sparkplug` should
 * import from here.
 */
export * from './host/index.js';
