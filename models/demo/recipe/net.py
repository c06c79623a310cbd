"""DemoNet: a small DeepLabV3+-style encoder-decoder (about 0.34 M parameters).

encoder   stride-2 conv/BN/ReLU blocks down to 1/16, dilated convs for context
decoder   1/16 features -> 1x1 conv -> bilinear up to 1/4, concatenated with a
          1x1-projected 1/4 skip connection
head      3x3 conv -> BatchNorm -> ReLU -> 1x1 conv (bias) = 7-class logits at 1/4
output    logits bilinearly upsampled (align_corners=False) to the input size
"""
import torch
import torch.nn as nn
import torch.nn.functional as F

NUM_CLASSES = 7


def cbr(cin, cout, k=3, stride=1, dilation=1):
    pad = dilation * (k // 2)
    return nn.Sequential(
        nn.Conv2d(cin, cout, k, stride=stride, padding=pad, dilation=dilation, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


class DemoNet(nn.Module):
    def __init__(self, num_classes=NUM_CLASSES, head_ch=48):
        super().__init__()
        self.stem = cbr(3, 24, stride=2)                                       # 1/2
        self.enc1 = nn.Sequential(cbr(24, 32, stride=2), cbr(32, 32))          # 1/4 (skip)
        self.enc2 = nn.Sequential(cbr(32, 64, stride=2), cbr(64, 64))          # 1/8
        self.enc3 = nn.Sequential(cbr(64, 96, stride=2), cbr(96, 96, dilation=2),
                                  cbr(96, 96, dilation=4))                     # 1/16
        self.aspp = cbr(96, 64, k=1)
        self.skip = cbr(32, 16, k=1)
        # DeepLabV3+-like head: 3x3 conv -> BN -> ReLU -> final 1x1 conv
        self.head = cbr(64 + 16, head_ch)
        self.classifier = nn.Conv2d(head_ch, num_classes, 1, bias=True)
        # export.py sets this: upsample by a constant factor 4 (identical result for
        # inputs divisible by 16) so that the ONNX Resize gets constant scales and
        # the output keeps a static [N,7,256,512] shape
        self.export_fixed_scale = False

    def features(self, x):
        """Input of the final 1x1 conv (phi), at 1/4 of the input resolution."""
        low = self.enc1(self.stem(x))
        deep = self.aspp(self.enc3(self.enc2(low)))
        deep = F.interpolate(deep, size=low.shape[-2:], mode="bilinear", align_corners=False)
        return self.head(torch.cat([deep, self.skip(low)], 1))

    def forward(self, x):
        z = self.classifier(self.features(x))
        if self.export_fixed_scale:
            return F.interpolate(z, scale_factor=4.0, mode="bilinear", align_corners=False)
        return F.interpolate(z, size=x.shape[-2:], mode="bilinear", align_corners=False)


MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)


def preprocess(images_uint8):
    """uint8 [N,H,W,3] RGB numpy -> normalised float tensor [N,3,H,W]."""
    x = torch.from_numpy(images_uint8).permute(0, 3, 1, 2).float() / 255.0
    m = torch.tensor(MEAN).view(1, 3, 1, 1)
    s = torch.tensor(STD).view(1, 3, 1, 1)
    return (x - m) / s
