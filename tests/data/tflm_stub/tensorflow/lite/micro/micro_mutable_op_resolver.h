// Compile-check stand-in for TensorFlow Lite Micro's op resolver: declarations only, NOT a runtime.
//
// Transcribed by hand from tflite-micro's tensorflow/lite/micro/micro_mutable_op_resolver.h (2025):
// the class template tflite::MicroMutableOpResolver<tOpCount> with every public Add* method, in the
// header's order, each with TFLM's default argument made optional here. edgekit's generated
// model_ops.h is compiled against it (tests/test_firmware_gen.py): a call to a method TFLM does not
// have fails here as it would on the board. Nothing is defined, so tests compile, never link.
// No standard headers: it also compiles with arm-none-eabi-g++ for the Cortex-M4.
#ifndef TENSORFLOW_LITE_MICRO_MICRO_MUTABLE_OP_RESOLVER_H_
#define TENSORFLOW_LITE_MICRO_MICRO_MUTABLE_OP_RESOLVER_H_

typedef enum TfLiteStatus { kTfLiteOk = 0, kTfLiteError = 1 } TfLiteStatus;

namespace tflite {

struct TFLMRegistration;

class MicroOpResolver {
 public:
  virtual ~MicroOpResolver() {}
};

template <unsigned int tOpCount>
class MicroMutableOpResolver : public MicroOpResolver {
 public:
  explicit MicroMutableOpResolver() {}

  TfLiteStatus AddCustom(const char* name, const TFLMRegistration* registration);

  TfLiteStatus AddAbs(const TFLMRegistration* registration = nullptr);
  TfLiteStatus AddAdd(const TFLMRegistration* registration = nullptr);
  TfLiteStatus AddAddN(const TFLMRegistration* registration = nullptr);
  TfLiteStatus AddArgMax(const TFLMRegistration* registration = nullptr);
  TfLiteStatus AddArgMin(const TFLMRegistration* registration = nullptr);
  TfLiteStatus AddAssignVariable(const TFLMRegistration* registration = nullptr);
  TfLiteStatus AddAveragePool2D(const TFLMRegistration* registration = nullptr);
  TfLiteStatus AddBatchMatMul(const TFLMRegistration* registration = nullptr);
  TfLiteStatus AddBatchToSpaceNd(const TFLMRegistration* registration = nullptr);
  TfLiteStatus AddBroadcastArgs(const TFLMRegistration* registration = nullptr);
  TfLiteStatus AddBroadcastTo(const TFLMRegistration* registration = nullptr);
  TfLiteStatus AddCallOnce(const TFLMRegistration* registration = nullptr);
  TfLiteStatus AddCast(const TFLMRegistration* registration = nullptr);
  TfLiteStatus AddCeil(const TFLMRegistration* registration = nullptr);
  TfLiteStatus AddCircularBuffer();
  TfLiteStatus AddConcatenation(const TFLMRegistration* registration = nullptr);
  TfLiteStatus AddConv2D(const TFLMRegistration* registration = nullptr);
  TfLiteStatus AddCos(const TFLMRegistration* registration = nullptr);
  TfLiteStatus AddCumSum(const TFLMRegistration* registration = nullptr);
  TfLiteStatus AddDelay();
  TfLiteStatus AddDepthToSpace(const TFLMRegistration* registration = nullptr);
  TfLiteStatus AddDepthwiseConv2D(const TFLMRegistration* registration = nullptr);
  TfLiteStatus AddDequantize(const TFLMRegistration* registration = nullptr);
  TfLiteStatus AddDetectionPostprocess();
  TfLiteStatus AddDiv(const TFLMRegistration* registration = nullptr);
  TfLiteStatus AddEmbeddingLookup(const TFLMRegistration* registration = nullptr);
  TfLiteStatus AddEnergy();
  TfLiteStatus AddElu(const TFLMRegistration* registration = nullptr);
  TfLiteStatus AddEqual(const TFLMRegistration* registration = nullptr);
  TfLiteStatus AddEthosU();
  TfLiteStatus AddExp(const TFLMRegistration* registration = nullptr);
  TfLiteStatus AddExpandDims(const TFLMRegistration* registration = nullptr);
  TfLiteStatus AddFftAutoScale();
  TfLiteStatus AddFill(const TFLMRegistration* registration = nullptr);
  TfLiteStatus AddFilterBank();
  TfLiteStatus AddFilterBankLog();
  TfLiteStatus AddFilterBankSquareRoot();
  TfLiteStatus AddFilterBankSpectralSubtraction();
  TfLiteStatus AddFloor(const TFLMRegistration* registration = nullptr);
  TfLiteStatus AddFloorDiv(const TFLMRegistration* registration = nullptr);
  TfLiteStatus AddFloorMod(const TFLMRegistration* registration = nullptr);
  TfLiteStatus AddFramer();
  TfLiteStatus AddFullyConnected(const TFLMRegistration* registration = nullptr);
  TfLiteStatus AddGather(const TFLMRegistration* registration = nullptr);
  TfLiteStatus AddGatherNd(const TFLMRegistration* registration = nullptr);
  TfLiteStatus AddGreater(const TFLMRegistration* registration = nullptr);
  TfLiteStatus AddGreaterEqual(const TFLMRegistration* registration = nullptr);
  TfLiteStatus AddHardSwish(const TFLMRegistration* registration = nullptr);
  TfLiteStatus AddIf(const TFLMRegistration* registration = nullptr);
  TfLiteStatus AddIrfft(const TFLMRegistration* registration = nullptr);
  TfLiteStatus AddL2Normalization(const TFLMRegistration* registration = nullptr);
  TfLiteStatus AddL2Pool2D(const TFLMRegistration* registration = nullptr);
  TfLiteStatus AddLeakyRelu(const TFLMRegistration* registration = nullptr);
  TfLiteStatus AddLess(const TFLMRegistration* registration = nullptr);
  TfLiteStatus AddLessEqual(const TFLMRegistration* registration = nullptr);
  TfLiteStatus AddLog(const TFLMRegistration* registration = nullptr);
  TfLiteStatus AddLogicalAnd(const TFLMRegistration* registration = nullptr);
  TfLiteStatus AddLogicalNot(const TFLMRegistration* registration = nullptr);
  TfLiteStatus AddLogicalOr(const TFLMRegistration* registration = nullptr);
  TfLiteStatus AddLogistic(const TFLMRegistration* registration = nullptr);
  TfLiteStatus AddLogSoftmax(const TFLMRegistration* registration = nullptr);
  TfLiteStatus AddMaximum(const TFLMRegistration* registration = nullptr);
  TfLiteStatus AddMaxPool2D(const TFLMRegistration* registration = nullptr);
  TfLiteStatus AddMirrorPad(const TFLMRegistration* registration = nullptr);
  TfLiteStatus AddMean(const TFLMRegistration* registration = nullptr);
  TfLiteStatus AddMinimum(const TFLMRegistration* registration = nullptr);
  TfLiteStatus AddMul(const TFLMRegistration* registration = nullptr);
  TfLiteStatus AddNeg(const TFLMRegistration* registration = nullptr);
  TfLiteStatus AddNotEqual(const TFLMRegistration* registration = nullptr);
  TfLiteStatus AddOverlapAdd();
  TfLiteStatus AddPack(const TFLMRegistration* registration = nullptr);
  TfLiteStatus AddPad(const TFLMRegistration* registration = nullptr);
  TfLiteStatus AddPadV2(const TFLMRegistration* registration = nullptr);
  TfLiteStatus AddPCAN();
  TfLiteStatus AddPrelu(const TFLMRegistration* registration = nullptr);
  TfLiteStatus AddQuantize(const TFLMRegistration* registration = nullptr);
  TfLiteStatus AddReadVariable(const TFLMRegistration* registration = nullptr);
  TfLiteStatus AddReduceMax(const TFLMRegistration* registration = nullptr);
  TfLiteStatus AddReduceMin(const TFLMRegistration* registration = nullptr);
  TfLiteStatus AddRelu(const TFLMRegistration* registration = nullptr);
  TfLiteStatus AddRelu6(const TFLMRegistration* registration = nullptr);
  TfLiteStatus AddReshape(const TFLMRegistration* registration = nullptr);
  TfLiteStatus AddResizeBilinear(const TFLMRegistration* registration = nullptr);
  TfLiteStatus AddResizeNearestNeighbor();
  TfLiteStatus AddReverseV2(const TFLMRegistration* registration = nullptr);
  TfLiteStatus AddRfft(const TFLMRegistration* registration = nullptr);
  TfLiteStatus AddRound(const TFLMRegistration* registration = nullptr);
  TfLiteStatus AddRsqrt(const TFLMRegistration* registration = nullptr);
  TfLiteStatus AddSelectV2(const TFLMRegistration* registration = nullptr);
  TfLiteStatus AddShape(const TFLMRegistration* registration = nullptr);
  TfLiteStatus AddSin(const TFLMRegistration* registration = nullptr);
  TfLiteStatus AddSlice(const TFLMRegistration* registration = nullptr);
  TfLiteStatus AddSoftmax(const TFLMRegistration* registration = nullptr);
  TfLiteStatus AddSpaceToBatchNd(const TFLMRegistration* registration = nullptr);
  TfLiteStatus AddSpaceToDepth(const TFLMRegistration* registration = nullptr);
  TfLiteStatus AddSplit(const TFLMRegistration* registration = nullptr);
  TfLiteStatus AddSplitV(const TFLMRegistration* registration = nullptr);
  TfLiteStatus AddSqueeze(const TFLMRegistration* registration = nullptr);
  TfLiteStatus AddSqrt(const TFLMRegistration* registration = nullptr);
  TfLiteStatus AddSquare(const TFLMRegistration* registration = nullptr);
  TfLiteStatus AddSquaredDifference(const TFLMRegistration* registration = nullptr);
  TfLiteStatus AddStridedSlice(const TFLMRegistration* registration = nullptr);
  TfLiteStatus AddStacker();
  TfLiteStatus AddSub(const TFLMRegistration* registration = nullptr);
  TfLiteStatus AddSum(const TFLMRegistration* registration = nullptr);
  TfLiteStatus AddSvdf(const TFLMRegistration* registration = nullptr);
  TfLiteStatus AddTanh(const TFLMRegistration* registration = nullptr);
  TfLiteStatus AddTransposeConv(const TFLMRegistration* registration = nullptr);
  TfLiteStatus AddTranspose(const TFLMRegistration* registration = nullptr);
  TfLiteStatus AddUnpack(const TFLMRegistration* registration = nullptr);
  TfLiteStatus AddUnidirectionalSequenceLSTM(const TFLMRegistration* registration = nullptr);
  TfLiteStatus AddVarHandle(const TFLMRegistration* registration = nullptr);
  TfLiteStatus AddWhile(const TFLMRegistration* registration = nullptr);
  TfLiteStatus AddWindow();
  TfLiteStatus AddZerosLike(const TFLMRegistration* registration = nullptr);

  unsigned int GetRegistrationLength();
};

}  // namespace tflite

#endif  // TENSORFLOW_LITE_MICRO_MICRO_MUTABLE_OP_RESOLVER_H_
