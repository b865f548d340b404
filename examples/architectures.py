"""Shapes and parameter counts of two classic architectures, checked against the published
tables (no training, no data): AlexNet's first layer and VGG-16.

AlexNet (Krizhevsky et al. 2012): 96 filters of 11x11x3 with stride 4 take a 227x227x3
image to 55x55x96, with 96 * (11 * 11 * 3 + 1) = 34,944 parameters.
VGG-16 (Simonyan & Zisserman 2015, configuration D): 13 3x3 conv layers, 5 max pools,
3 dense layers, 138,357,544 parameters.

The weights are zeros (np.zeros costs no memory until written): only the graph is built.

    python examples/architectures.py
"""

import graphc as gc
from graphc import nn

N = gc.dim("N")

alexnet_conv1 = nn.Conv(3, 96, 11, stride=4, init="zeros", name="conv1")
built = nn.Sequential([alexnet_conv1, nn.ReLU("relu1")]).build(gc.input("x", (N, 3, 227, 227)))
print("AlexNet, first layer:")
print(built.describe())
assert tuple(built.output.shape[1:]) == (96, 55, 55)
assert alexnet_conv1.parameter_count == 34_944

VGG16 = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"]
layers, channels, stage, index = [], 3, 1, 1
for item in VGG16:
    if item == "M":
        layers.append(nn.MaxPool(2, name=f"pool{stage}"))
        stage, index = stage + 1, 1
        continue
    layers += [
        nn.Conv(channels, item, 3, padding=1, init="zeros", name=f"conv{stage}_{index}"),
        nn.ReLU(f"relu{stage}_{index}"),
    ]
    channels, index = item, index + 1
layers += [nn.Flatten("flatten")]
for k, (n_in, n_out) in enumerate([(512 * 7 * 7, 4096), (4096, 4096), (4096, 1000)]):
    layers.append(nn.Dense(n_in, n_out, init="zeros", name=f"fc{k + 6}"))
    if k < 2:
        layers.append(nn.ReLU(f"relu{k + 6}"))
vgg16 = nn.Sequential(layers, name="vgg16")
built = vgg16.build(gc.input("x", (N, 3, 224, 224)))
print("\nVGG-16 (configuration D):")
print("\n".join(line for line in built.describe().splitlines() if "relu" not in line))
print(f"total: {vgg16.parameter_count:,} parameters")

published = {  # parameters per layer (weights + biases), from the paper's configuration D
    "conv1_1": 1_792,
    "conv1_2": 36_928,
    "conv2_1": 73_856,
    "conv2_2": 147_584,
    "conv3_1": 295_168,
    "conv3_2": 590_080,
    "conv3_3": 590_080,
    "conv4_1": 1_180_160,
    "conv4_2": 2_359_808,
    "conv4_3": 2_359_808,
    "conv5_1": 2_359_808,
    "conv5_2": 2_359_808,
    "conv5_3": 2_359_808,
    "fc6": 102_764_544,
    "fc7": 16_781_312,
    "fc8": 4_097_000,
}
counts = {name: count for name, _, _, count in built.trace if count}
assert counts == published, counts
assert vgg16.parameter_count == 138_357_544
shapes = {name: tuple(shape[1:]) for name, _, shape, _ in built.trace}
assert shapes["pool5"] == (512, 7, 7) and shapes["conv3_3"] == (256, 56, 56)
assert tuple(built.output.shape[1:]) == (1000,)
