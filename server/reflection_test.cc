// Server reflection lists the services, as grpcurl and other generic clients would ask for them.
// Asked through a generic call with the reflection messages built from the descriptors that
// libgrpc++_reflection registers (Debian ships no reflection stubs to include).
#include <memory>
#include <set>
#include <string>

#include "gmock/gmock.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/message.h"
#include "grpcpp/generic/generic_stub.h"
#include "grpcpp/support/byte_buffer.h"
#include "gtest/gtest.h"
#include "server/testing/server_harness.h"

namespace mlkv::server {
namespace {

using ::mlkv::server::testing::TestServer;
using ::testing::IsSupersetOf;
namespace pb = ::google::protobuf;

// A fresh message of the registered type `name`, or null.
std::unique_ptr<pb::Message> NewMessage(const std::string& name) {
  const pb::Descriptor* descriptor =
      pb::DescriptorPool::generated_pool()->FindMessageTypeByName(name);
  if (descriptor == nullptr) return nullptr;
  return std::unique_ptr<pb::Message>(
      pb::MessageFactory::generated_factory()->GetPrototype(descriptor)->New());
}

// Runs one completion-queue step and returns whether it succeeded.
bool Step(grpc::CompletionQueue* cq, void* expected) {
  void* tag = nullptr;
  bool ok = false;
  return cq->Next(&tag, &ok) && tag == expected && ok;
}

TEST(ReflectionTest, ListsTheServices) {
  TestServer server;
  auto request = NewMessage("grpc.reflection.v1alpha.ServerReflectionRequest");
  auto response = NewMessage("grpc.reflection.v1alpha.ServerReflectionResponse");
  ASSERT_TRUE(request != nullptr) << "libgrpc++_reflection registered no descriptors";
  ASSERT_TRUE(response != nullptr);
  request->GetReflection()->SetString(
      request.get(), request->GetDescriptor()->FindFieldByName("list_services"), "*");
  std::string bytes;
  ASSERT_TRUE(request->SerializeToString(&bytes));
  grpc::Slice slice(bytes);
  grpc::ByteBuffer out(&slice, 1);

  grpc::GenericStub stub(server.channel);
  grpc::CompletionQueue cq;
  grpc::ClientContext context;
  auto call = stub.PrepareCall(
      &context, "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo", &cq);
  int tags[5];
  call->StartCall(&tags[0]);
  ASSERT_TRUE(Step(&cq, &tags[0]));
  call->Write(out, &tags[1]);
  ASSERT_TRUE(Step(&cq, &tags[1]));
  call->WritesDone(&tags[2]);
  ASSERT_TRUE(Step(&cq, &tags[2]));
  grpc::ByteBuffer in;
  call->Read(&in, &tags[3]);
  ASSERT_TRUE(Step(&cq, &tags[3]));
  grpc::Status status;
  call->Finish(&status, &tags[4]);
  ASSERT_TRUE(Step(&cq, &tags[4]));
  ASSERT_TRUE(status.ok()) << status.error_message();

  std::vector<grpc::Slice> slices;
  ASSERT_TRUE(in.Dump(&slices).ok());
  std::string received;
  for (const grpc::Slice& s : slices) {
    received.append(reinterpret_cast<const char*>(s.begin()), s.size());
  }
  ASSERT_TRUE(response->ParseFromString(received));
  const pb::Reflection* reflection = response->GetReflection();
  const pb::Message& list = reflection->GetMessage(
      *response, response->GetDescriptor()->FindFieldByName("list_services_response"));
  const pb::FieldDescriptor* services = list.GetDescriptor()->FindFieldByName("service");
  std::set<std::string> names;
  for (int i = 0; i < list.GetReflection()->FieldSize(list, services); ++i) {
    const pb::Message& service = list.GetReflection()->GetRepeatedMessage(list, services, i);
    names.insert(service.GetReflection()->GetString(
        service, service.GetDescriptor()->FindFieldByName("name")));
  }
  EXPECT_THAT(names, IsSupersetOf({"mlkv.v1.MlkvService", "grpc.health.v1.Health",
                                   "grpc.reflection.v1alpha.ServerReflection"}));
  cq.Shutdown();
  void* tag;
  bool ok;
  while (cq.Next(&tag, &ok)) {
  }
}

}  // namespace
}  // namespace mlkv::server
