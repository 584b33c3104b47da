export { createLogger, type Fields, type Logger, type LoggerOptions } from './log.js';
export { requestLogger, startServer, type RunningServer, type StartOptions } from './http.js';
