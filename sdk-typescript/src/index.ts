export * from "./gen/durable/v1/common_pb.js";
