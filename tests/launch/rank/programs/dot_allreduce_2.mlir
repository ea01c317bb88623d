// 2 devices: x @ w with the contracting dimension sharded, completed by an all_reduce.
module @dot_allreduce attributes {mhlo.num_partitions = 2 : i32, mhlo.num_replicas = 1 : i32} {
  sdy.mesh @mesh = <["x"=2]>
  func.func public @main(%a: tensor<4x3xf32> {sdy.sharding = #sdy.sharding<@mesh, [{}, {"x"}]>, rhino.global_type = tensor<4x6xf32>},
                         %b: tensor<3x5xf32> {sdy.sharding = #sdy.sharding<@mesh, [{"x"}, {}]>, rhino.global_type = tensor<6x5xf32>})
      -> (tensor<4x5xf32> {sdy.sharding = #sdy.sharding<@mesh, [{}, {}]>, rhino.global_type = tensor<4x5xf32>}) {
    %0 = stablehlo.dot_general %a, %b, contracting_dims = [1] x [0] : (tensor<4x3xf32>, tensor<3x5xf32>) -> tensor<4x5xf32>
    %1 = "stablehlo.all_reduce"(%0) ({
    ^bb0(%x: tensor<f32>, %y: tensor<f32>):
      %s = stablehlo.add %x, %y : tensor<f32>
      stablehlo.return %s : tensor<f32>
    }) {replica_groups = dense<[[0, 1]]> : tensor<1x2xi64>, channel_handle = #stablehlo.channel_handle<handle = 1, type = 1>, use_global_device_ids} : (tensor<4x5xf32>) -> tensor<4x5xf32>
    %2 = stablehlo.tanh %1 : tensor<4x5xf32>
    return %2 : tensor<4x5xf32>
  }
}
