"""TorchServe model file for ResNet18 (as in TorchServe's examples/image_classifier/resnet_18).

torch-model-archiver packs it with the same ``resnet18.pth`` state_dict every contender
serves; TorchServe's built-in ``image_classifier`` handler instantiates the one class below
and loads the state_dict into it.
"""

from torchvision.models.resnet import BasicBlock, ResNet


class ImageClassifier(ResNet):
    def __init__(self):
        super().__init__(BasicBlock, [2, 2, 2, 2])
